#!/usr/bin/env bash
# Section 4 of `make bench`: start-up and module size.
#  - stepupd: time from spawning the binary to owning org.stepup.Daemon1
#    (stepupd/examples/bench_startup.rs), RUNS times on an empty state and
#    on a large one (100 000 users, 1 000 000 history rows: the start-up
#    quick_check reads the whole file);
#  - the modules: file size, and the first dlopen + dlclose (bench/dl_load.c)
#    of pam_stepup.so and the peers in a new process that has libpam loaded.
# Usage: bench/startup.sh [RUNS]   (default 10)
# Writes $RAW/startup/{empty,large}.txt, $RAW/startup/dl-<module>.txt and
# $RAW/startup/sizes.tsv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-10}

bench_init startup
out=$RAW/startup
rm -rf "$out"; mkdir -p "$out"
bus_start
config_dir "$WORK/etc" '[defaults]
action = "step_up"
methods = ["totp"]'
state_dir "$WORK/empty"
"$BIN/examples/bench_startup" "$BIN/stepupd" "$BUS" "$WORK/etc" "$WORK/empty" "$runs" > "$out/empty.txt"
"$BIN/examples/bench_fill" "$WORK/large" 100000 1000000 >/dev/null
"$BIN/examples/bench_startup" "$BIN/stepupd" "$BUS" "$WORK/etc" "$WORK/large" "$runs" > "$out/large.txt"

cc -O2 -Wall -o "$WORK/dl_load" "$TOP/bench/dl_load.c" -ldl -lpam
secdir=/lib/x86_64-linux-gnu/security
[ -d "$secdir" ] || secdir=$(dirname "$(find /lib* /usr/lib* -name pam_permit.so -print -quit)")
printf 'module\tbytes\tpath\n' > "$out/sizes.tsv"
for m in "$BIN/libpam_stepup.so" "$secdir/pam_permit.so" "$secdir/pam_google_authenticator.so" "$secdir/pam_oath.so"; do
  name=$(basename "$m" .so); name=${name#lib}
  "$WORK/dl_load" "$m" 20 >/dev/null   # page cache
  # One load per fresh process: a module linked -z nodelete (pam_stepup.so)
  # stays mapped after its first dlclose, so later rounds in one process
  # would time nothing. The first load is what a PAM application pays.
  : > "$out/dl-$name.txt"
  for _ in $(seq 100); do "$WORK/dl_load" "$m" 1 >> "$out/dl-$name.txt"; done
  printf '%s\t%s\t%s\n' "$name" "$(stat -L -c %s "$m")" "$m" >> "$out/sizes.tsv"
done
printf '%s\t%s\t%s\n' stepupd "$(stat -c %s "$BIN/stepupd")" "$BIN/stepupd" >> "$out/sizes.tsv"
echo "startup: done ($out)"
