#!/usr/bin/env bash
# Section 3 of `make bench`: scale of state. For USERS in 10, 10 000 and
# 100 000 enrolled users (one TOTP credential each) and HISTORY of 0 and
# 1 000 000 rows (spread over those users and the past 170 days), filled by
# stepupd/examples/bench_fill.rs: start stepupd on that state and drive
# CLIENTS concurrent clients for SECONDS through the module, each attempt for
# a random one of the users, on a policy whose rules read the history
# (recent_failures, stepped_up_within) before the default allows.
# Records decisions, stepupd's CPU time per decision (the evaluation cost
# seen from the daemon) and its RSS (after start, and peak under load).
# Last, the worst case for such a rule: one user ("hot") with 100 000 rows
# in the rule's window and no success among them, every attempt by them.
# Usage: bench/scale.sh [SECONDS [CLIENTS]]   (default 6, 8)
# Writes $RAW/scale/<users>-<history>.txt and $RAW/scale/summary.tsv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
seconds=${1:-6}
clients=${2:-8}

bench_init scale
out=$RAW/scale
rm -rf "$out"; mkdir -p "$out"
bus_start
svc=$(pam_service scale "$(stepup_line)")
config_dir "$WORK/etc" "[defaults]
action = \"allow\"
methods = [\"totp\"]

[[rule]]
name = \"cool-down\"
recent_failures = { at_least = 1000, within = \"1h\" }
action = \"deny\"

[[rule]]
name = \"recently-verified\"
stepped_up_within = { within = \"30d\", scope = \"user\" }
service = [\"$svc\"]
action = \"allow\""
hz=$(getconf CLK_TCK)

printf 'users\thistory\thot\tseconds\tdecisions\tfailed\tdaemon_cpu_s\trss_start_kib\trss_peak_kib\tdb_bytes\n' > "$out/summary.tsv"
measure() { # USERS HISTORY HOT USER-PATTERN
  local users=$1 history=$2 hot=$3 pattern=$4 state=$WORK/state-$1-$2-$3
  local tag=$users-$history; [ "$hot" -gt 0 ] && tag=$tag-hot
  "$BIN/examples/bench_fill" "$state" "$users" "$history" "$hot"
  daemon_start "$WORK/etc" "$state"
  local rss0 t0 t1
  rss0=$(proc_kib "$DAEMON_PID" VmRSS)
  "$WORK/pam_bench" -n 20 "$svc" u0 >/dev/null   # warm-up
  reset_peak "$DAEMON_PID"
  t0=$(proc_ticks "$DAEMON_PID")
  "$WORK/pam_bench" -c "$clients" -d "$seconds" -m "$users" "$svc" "$pattern" > "$out/$tag.txt" || true
  t1=$(proc_ticks "$DAEMON_PID")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$users" "$history" "$hot" "$seconds" \
    "$(wc -l < "$out/$tag.txt")" "$(grep -vc 'rc=0$' "$out/$tag.txt" || true)" \
    "$(awk "BEGIN {printf \"%.3f\", ($t1 - $t0) / $hz}")" "$rss0" "$(proc_kib "$DAEMON_PID" VmHWM)" \
    "$(stat -c %s "$state/stepup.db")" >> "$out/summary.tsv"
  daemon_stop
  rm -rf "$state"
  tail -1 "$out/summary.tsv"
}

for users in 10 10000 100000; do
  for history in 0 1000000; do
    measure "$users" "$history" 0 'u%d'
  done
done
# The worst case for a history rule: every attempt is by one user with
# 100 000 rows in the rule's 30-day window and no success among them.
measure 10000 1000000 100000 hot
