#!/usr/bin/env bash
# The sudo approval plugin's added latency per sudo: `sudo -n /usr/bin/true`
# run by a throwaway user (NOPASSWD, so sudoers asks nothing) with and
# without stepup_sudo.so in sudo.conf, RUNS times each, interleaved (without,
# with, without, …) so a drift of the machine hits both sides alike. With
# the plugin, stepupd on a private bus allows /usr/bin/true by a command
# rule: one full check (connect, owner check, Begin → allow) per sudo.
#
# sudo.conf is never touched: everything runs in one private mount
# namespace whose /etc/sudo.conf is bind-mounted from $WORK before each run
# (outside the timed part). Each run is timed from just before sudo is
# started (through setpriv, the same for both sides) to its exit, with
# bash's EPOCHREALTIME.
#
# Usage: bench/sudo_plugin.sh [RUNS]   (default 200; about 20 s)
# Prints the medians; raw data in $RAW/sudo_plugin/runs.tsv.
# Not part of `make bench`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-200}

cargo build --release --locked --quiet -p stepupd -p stepup_sudo --manifest-path "$TOP/Cargo.toml"
bench_init sudo_plugin
out=$RAW/sudo_plugin
rm -rf "$out"; mkdir -p "$out"
user=sbench$$
sudoers=/etc/sudoers.d/stepup-bench-$$
cleanup() {
  rm -f "$sudoers"
  userdel --remove "$user" >/dev/null 2>&1 || true
  bench_cleanup
}
trap cleanup EXIT

bus_start
config_dir "$WORK/etc" '[defaults]
action = "step_up"
methods = ["totp"]

[[rule]]
name = "bench-true"
command = ["/usr/bin/true"]
action = "allow"'
state_dir "$WORK/state"
daemon_start "$WORK/etc" "$WORK/state"

useradd --create-home --shell /bin/sh "$user"
printf 'Defaults:%s !lecture\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" "$user" > "$WORK/sudoers"
visudo -cqf "$WORK/sudoers"
install -m 0440 "$WORK/sudoers" "$sudoers"

sudoers_plugins='Plugin sudoers_policy sudoers.so
Plugin sudoers_io sudoers.so
Plugin sudoers_audit sudoers.so'
printf '%s\n' "$sudoers_plugins" > "$WORK/without.conf"
printf '%s\nPlugin stepup_approval %s bus=%s\n' "$sudoers_plugins" "$BIN/libstepup_sudo.so" "$BUS" > "$WORK/with.conf"

# One namespace for all runs; prints "SIDE MICROSECONDS STATUS" per run.
unshare -m --propagation private bash -c '
  set -u
  runs=$1 work=$2 user=$3
  one() {
    mount --bind "$work/$1.conf" /etc/sudo.conf
    local t0=$EPOCHREALTIME status=0
    setpriv --reuid="$user" --regid="$user" --init-groups --reset-env sudo -n /usr/bin/true </dev/null >/dev/null 2>&1 || status=$?
    local t1=$EPOCHREALTIME
    umount /etc/sudo.conf
    echo "$1 $(( ${t1/./} - ${t0/./} )) $status"
  }
  one without >/dev/null; one with >/dev/null   # warm-up
  for ((i = 0; i < runs; i++)); do one without; one with; done
' bash "$runs" "$WORK" "$user" > "$out/runs.tsv"

failed=$(awk '$3 != 0' "$out/runs.tsv" | wc -l)
if [ "$failed" -ne 0 ]; then
  echo "sudo_plugin: $failed runs failed (see $out/runs.tsv; stepupd log below)" >&2
  tail -n 5 "$WORK/stepupd.log" >&2
  exit 1
fi
grep -q 'rule=bench-true verdict=allow' "$WORK/stepupd.log" || {
  echo "sudo_plugin: stepupd never allowed by the bench rule" >&2; exit 1; }

median() { # SIDE: the median of that side's microseconds, in ms
  awk -v s="$1" '$1 == s {print $2}' "$out/runs.tsv" | sort -n |
    awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m / 1000}'
}
without=$(median without)
with=$(median with)
echo "sudo -n /usr/bin/true, $runs runs each, interleaved:"
echo "  without the plugin: median $without ms"
echo "  with stepup_sudo:   median $with ms (stepupd allows it by a command rule)"
echo "  added per sudo:     $(awk -v a="$with" -v b="$without" 'BEGIN {printf "%.2f", a - b}') ms"
