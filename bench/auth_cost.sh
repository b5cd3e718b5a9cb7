#!/usr/bin/env bash
# Per-authentication cost with the in-process driver (pam_start /
# pam_authenticate / pam_end in a loop), release build, one run:
#   pam_permit.so (the floor) · stepup allow path · stepup TOTP path.
# Usage: bench/auth_cost.sh [ROUNDS]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-300}
cargo build --release --workspace --locked --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release

. scripts/lib/sandbox.sh
policy=$(mktemp)
cat > "$policy" <<'TOML'
[defaults]
action = "step_up"
methods = ["totp"]
[[rule]]
name = "bench-allow"
user = ["fast"]
action = "allow"
TOML
sandbox_start "$bin" "$policy" bench
rm -f "$policy"
permit=/etc/pam.d/stepup-bench-permit-$$
trap 'rm -f "$permit"; sandbox_stop' EXIT
printf 'auth required pam_permit.so\n' > "$permit"
gcc -O2 -Wall -o "$SANDBOX/pam_drive" tests/driver/pam_drive.c -lpam

# One credential per round, all with the same secret: each accepts the
# current code once, so every round is a real, successful TOTP step-up.
secret=$(head -c 20 /dev/urandom | base32 | tr -d '=')
for i in $(seq 0 $((rounds - 1))); do
  printf '%s' "$secret" | $CTL enroll totp "tot$i" --secret - --no-qr >/dev/null
done

measure() { # NAME SERVICE USER [pam_drive args]
  local name=$1 service=$2 user=$3; shift 3
  "$SANDBOX/pam_drive" -T -n "$rounds" "$@" "$service" "$user" > "$SANDBOX/$name.out" || true
  local ok
  ok=$(grep -c '^result=0 ' "$SANDBOX/$name.out" || true)
  [ "$ok" -eq "$rounds" ] || { echo "$name: only $ok of $rounds rounds succeeded" >&2; tail -5 "$SANDBOX/$name.out" >&2; exit 1; }
  grep '^us=' "$SANDBOX/$name.out" | cut -d= -f2 > "$SANDBOX/$name.us"
}
# Warm-up so the first dlopen of each module is not counted.
"$SANDBOX/pam_drive" -n 20 "$(basename "$permit")" fast >/dev/null
"$SANDBOX/pam_drive" -n 20 "$SERVICE" fast >/dev/null

measure pam_permit "$(basename "$permit")" fast
measure stepup_allow "$SERVICE" fast
code=$(oathtool --totp -b "$secret")
measure stepup_totp "$SERVICE" 'tot%d' -a "$code"

python3 - "$SANDBOX" "$rounds" <<'PY'
import statistics, sys
d, rounds = sys.argv[1], sys.argv[2]
def load(n):
    xs = sorted(int(l) for l in open(f"{d}/{n}.us"))
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return statistics.median(xs), q(0.90), q(0.99)
rows = [(n, *load(n)) for n in ("pam_permit", "stepup_allow", "stepup_totp")]
floor = rows[0][1]
print(f"per authentication, {rounds} rounds, microseconds (pam_start..pam_end)")
print(f"{'path':14} {'median':>8} {'p90':>8} {'p99':>8} {'x floor':>8}")
for n, m, p90, p99 in rows:
    print(f"{n:14} {m:8.0f} {p90:8d} {p99:8d} {m / floor:8.2f}")
PY
