#!/usr/bin/env bash
# `make bench`: every benchmark in one run on this machine, then
# bench/results.md (tables) and bench/results.png (latency distributions).
# Run as root on Debian/Ubuntu; installs what it needs with apt. The method
# and the latest figures are in docs/performance.md.
# Raw data: target/bench/ (or $BENCH_RAW).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "make bench: run as root (PAM service files, private daemons, apt)" >&2; exit 1; }

# The peers and the tools, besides what scripts/install-deps.sh installs.
packages=(libpam-google-authenticator libpam-oath oathtool gnuplot-nox gcc libpam0g-dev dbus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "bench: release build"
cargo build --release --workspace --locked --quiet
cargo build --release --locked --quiet -p stepupd --examples

. bench/lib.sh
rm -rf "$RAW"; mkdir -p "$RAW"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
bench/auth_cost.sh "${BENCH_BATCHES:-10}" "${BENCH_ROUNDS:-40}"
bench/concurrency.sh "${BENCH_SECONDS:-8}"
bench/scale.sh "${BENCH_SCALE_SECONDS:-6}" 8
bench/startup.sh 10
bench/shared_store.sh "${BENCH_SHARED_SECONDS:-6}"   # skipped (with a note) without PostgreSQL
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 bench/report.py "$RAW" bench/results.md "$(machine_line)" "$load_before / $load_after (measured in $(( $(date +%s) - started )) s)"
gnuplot -e "raw='$RAW'; out='bench/results.png'" bench/plot.gp
echo "bench: wrote bench/results.md and bench/results.png"
