#!/usr/bin/env bash
# Section 5 of `make bench` (optional): the shared store. Decisions per
# second and latency (p50, p99) at N concurrent clients (processes in an
# authentication loop through the real module) for SECONDS each, on a
# policy whose rules read the history (recent_failures, stepped_up_within)
# before the default allows, from a remote address (so each allow also
# records the source: one write per decision):
#   - sqlite: one stepupd on its embedded store, N clients;
#   - postgres: two stepupd (two private buses: two hosts) sharing one
#     PostgreSQL (a private cluster on a unix socket, run as `postgres`),
#     the N clients split between them.
# Skipped, with a note, when PostgreSQL's server is not installed.
# Usage: bench/shared_store.sh [SECONDS [N...]]   (default 6; 1 16 64)
# Writes $RAW/shared/<store>-<N>.txt (us=… rc=… lines) and summary.tsv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
seconds=${1:-6}
shift || true
levels=("${@:-1 16 64}")
read -r -a levels <<< "${levels[*]}"

out=$RAW/shared
rm -rf "$out"; mkdir -p "$out"
initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$initdb" ]; then
  echo "shared store: skipped (PostgreSQL's server is not installed: apt-get install postgresql)" | tee "$out/skipped"
  exit 0
fi
pgbin=$(dirname "$initdb")

bench_init shared
PG= BUS_B= B_BUS_PID= B_DAEMON_PID=
shared_cleanup() {
  [ -n "$B_DAEMON_PID" ] && { kill "$B_DAEMON_PID" 2>/dev/null; wait "$B_DAEMON_PID" 2>/dev/null; }
  [ -n "$B_BUS_PID" ] && { kill "$B_BUS_PID" 2>/dev/null; wait "$B_BUS_PID" 2>/dev/null; }
  [ -n "$PG" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$PG/data" -m immediate -w stop >/dev/null 2>&1
  bench_cleanup
}
trap shared_cleanup EXIT

policy='[lockout]
deny = 0

[defaults]
action = "allow"
methods = ["totp"]

[[rule]]
name = "cool-down"
recent_failures = { at_least = 1000, within = "1h" }
action = "deny"

[[rule]]
name = "recently-verified"
stepped_up_within = { within = "30d", scope = "user" }
action = "allow"'

# A private cluster: socket in $PG, no TCP.
PG=$WORK/pg; mkdir -p "$PG"; chown postgres "$PG"
port=$(( 20000 + RANDOM % 20000 ))
runuser -u postgres -- "$initdb" -N -A trust -U postgres -D "$PG/data" >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$PG/data" -l "$PG/log" -w \
  -o "-k $PG -p $port -c listen_addresses='' -c max_connections=50" start >/dev/null
"$pgbin/psql" -X -q -h "$PG" -p "$port" -U postgres -c "CREATE ROLE stepup LOGIN" \
  -c "CREATE DATABASE stepup OWNER stepup" >/dev/null
key=$WORK/fleet.key; (umask 077; openssl rand -hex 32 > "$key")
store() { printf '\n[store]\nurl = "postgresql://stepup@/stepup?host=%s&port=%s"\nkey_file = "%s"\nhost_name = "%s"\n' "$PG" "$port" "$key" "$1"; }

# measure STORE N SERVICE... : N clients spread over the services.
measure() {
  local name=$1 n=$2; shift 2
  local services=("$@") k=${#services[@]} i share pids=()
  for i in "${!services[@]}"; do
    share=$(( n / k + (i < n % k ? 1 : 0) ))
    [ "$share" -gt 0 ] || continue
    "$WORK/pam_bench" -r 10.0.0.1 -m 100 -c "$share" -d "$seconds" "${services[$i]}" 'u%d' > "$out/$name-$n.$i.txt" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  cat "$out/$name-$n".*.txt > "$out/$name-$n.txt"; rm -f "$out/$name-$n".*.txt
  python3 - "$out/$name-$n.txt" "$name" "$n" "$seconds" >> "$out/summary.tsv" <<'PY'
import sys
path, name, n, secs = sys.argv[1:5]
lat, bad = [], 0
for line in open(path):
    kv = dict(p.split("=", 1) for p in line.split())
    lat.append(int(kv["us"])); bad += kv["rc"] != "0"
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
print(f"{name}\t{n}\t{secs}\t{len(lat)}\t{bad}\t{q(.5)}\t{q(.99)}")
PY
  tail -1 "$out/summary.tsv"
  sleep 1
}

printf 'store\tclients\tseconds\tdecisions\tfailed\tp50_us\tp99_us\n' > "$out/summary.tsv"

# SQLite: one host.
bus_start
config_dir "$WORK/etc-sqlite" "$policy"
state_dir "$WORK/state-sqlite"
daemon_start "$WORK/etc-sqlite" "$WORK/state-sqlite"
svc=$(pam_service shared-sqlite "$(stepup_line)")
"$WORK/pam_bench" -r 10.0.0.1 -n 50 "$svc" u1 >/dev/null   # warm-up
for n in "${levels[@]}"; do measure sqlite "$n" "$svc"; done
daemon_stop

# PostgreSQL: host A on the first bus, host B on a second one.
config_dir "$WORK/etc-a" "$policy$(store host-a)"
state_dir "$WORK/state-a"
daemon_start "$WORK/etc-a" "$WORK/state-a"
svc_a=$(pam_service shared-a "$(stepup_line)")
mkdir -p "$WORK/bus-b"; chmod 755 "$WORK/bus-b"
bus_a=$BUS
private_bus "$WORK/bus-b" || { echo "second dbus-daemon did not start" >&2; exit 1; }
BUS_B=$BUS; B_BUS_PID=$PRIVATE_BUS_PID; BUS=$bus_a
config_dir "$WORK/etc-b" "$policy$(store host-b)"
state_dir "$WORK/state-b"
"$BIN/stepupd" --config-dir "$WORK/etc-b" --state-dir "$WORK/state-b" --bus-address "$BUS_B" 2>"$WORK/stepupd-b.log" &
B_DAEMON_PID=$!
for _ in $(seq 600); do "$BIN/stepupctl" --bus-address "$BUS_B" status >/dev/null 2>&1 && break; sleep 0.05; done
svc_b=$(pam_service shared-b "auth required $BIN/libpam_stepup.so bus=$BUS_B")
"$WORK/pam_bench" -r 10.0.0.1 -n 50 "$svc_a" u1 >/dev/null
"$WORK/pam_bench" -r 10.0.0.1 -n 50 "$svc_b" u1 >/dev/null
for n in "${levels[@]}"; do measure postgres "$n" "$svc_a" "$svc_b"; done
echo "shared store: $("$pgbin/psql" -X -A -t -h "$PG" -p "$port" -U postgres -d stepup -c 'SELECT count(*) FROM sources') source row(s) in the shared store"
