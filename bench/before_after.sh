#!/usr/bin/env bash
# Before/after on one machine, one method: this tree's release build against
# another commit's, both driven by this tree's scripts and driver
# (bench/auth_cost.sh, bench/concurrency.sh 1 and 16 clients), in
# alternating rounds (before, after; then after, before; …) so that drift in
# the machine's load falls on both alike. The other commit is built once in
# a throwaway worktree, into target/before-<commit> (kept as a cache).
# Usage: bench/before_after.sh REF [ROUNDS]   (default 3; as root)
# Prints one line per round and side, then the medians over the rounds.
# Raw data: target/before-after/<side>-<round>/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
[ "$(id -u)" -eq 0 ] || { echo "before_after: run as root" >&2; exit 1; }
ref=${1:?usage: bench/before_after.sh REF [ROUNDS]}
rounds=${2:-3}
commit=$(git rev-parse --verify "$ref^{commit}")
before_target=$top/target/before-${commit:0:12}
raw=$top/target/before-after
rm -rf "$raw"; mkdir -p "$raw"

cargo build --release --workspace --locked --quiet
if [ ! -x "$before_target/release/stepupd" ]; then
  tree=$(mktemp -d /tmp/stepup-before.XXXXXX)
  git worktree add --detach --quiet "$tree" "$commit"
  (cd "$tree" && CARGO_TARGET_DIR=$before_target cargo build --release --locked --quiet -p stepupd -p pam_stepup)
  git worktree remove --force "$tree"
fi

measure() { # SIDE ROUND
  local dir=$raw/$1-$2 target=$top/target
  [ "$1" = before ] && target=$before_target
  CARGO_TARGET_DIR=$target BENCH_RAW=$dir bench/auth_cost.sh 4 50 >/dev/null
  CARGO_TARGET_DIR=$target BENCH_RAW=$dir bench/concurrency.sh 5 1 16 >/dev/null
}

for r in $(seq 1 "$rounds"); do
  if ((r % 2)); then order=(before after); else order=(after before); fi
  for side in "${order[@]}"; do measure "$side" "$r"; done
done

python3 - "$raw" "$rounds" <<'EOF'
import statistics as st, sys, pathlib
raw, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def us(path):
    return [int(l) for l in path.read_text().split()]

def conc(d, n):
    lines = (d / "conc" / f"{n}.txt").read_text().splitlines()
    ok = sum(l.endswith("rc=0") for l in lines)
    row = next(r.split("\t") for r in (d / "conc" / "summary.tsv").read_text().splitlines()[1:]
               if r.split("\t")[0] == str(n))
    secs, daemon, bus = float(row[1]), float(row[2]), float(row[5])
    permit = len((d / "conc" / f"permit-{n}.txt").read_text().splitlines())
    return ok / secs, permit / secs, len(lines) - ok, daemon / len(lines) * 1e6, bus / len(lines) * 1e6

cols = ["permit ms", "allow ms", "allow ×", "TOTP ms", "oath ms", "TOTP ×oath",
        "1c auth/s", "16c auth/s", "16c ×permit", "16c errors",
        "stepupd µs/auth 1c", "16c", "dbus µs/auth 1c", "16c"]
rows = {"before": [], "after": []}
for side in rows:
    for r in range(1, rounds + 1):
        d = raw / f"{side}-{r}"
        med = {k: st.median(us(d / "auth" / f"{k}.warm")) / 1000
               for k in ("pam_permit", "stepup_allow", "stepup_totp", "pam_oath")}
        c1, c16 = conc(d, 1), conc(d, 16)
        rows[side].append([med["pam_permit"], med["stepup_allow"], med["stepup_allow"] / med["pam_permit"],
                           med["stepup_totp"], med["pam_oath"], med["stepup_totp"] / med["pam_oath"],
                           c1[0], c16[0], c16[0] / c16[1], c16[2], c1[3], c16[3], c1[4], c16[4]])

fmt = lambda v: f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.2f}"
print("| side | round | " + " | ".join(cols) + " |")
print("|---|---|" + "---:|" * len(cols))
for side, table in rows.items():
    for r, row in enumerate(table, 1):
        print(f"| {side} | {r} | " + " | ".join(fmt(v) for v in row) + " |")
for side, table in rows.items():
    print(f"| {side} | median | " + " | ".join(fmt(st.median(c)) for c in zip(*table)) + " |")
EOF
