# Sourced by bench/*.sh. Shared set-up for the benchmarks: a private system
# bus (the shipped D-Bus policy, as in scripts/lib/sandbox.sh), stepupd on a
# given config and state directory, and helpers. Everything lives under
# $WORK (a fresh directory); bench_cleanup (on EXIT) stops what was started
# and removes /etc/pam.d/stepup-bench-* files made by this run.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$TOP/scripts/lib/sandbox.sh" # private_bus
BIN=${CARGO_TARGET_DIR:-$TOP/target}/release
RAW=${BENCH_RAW:-${CARGO_TARGET_DIR:-$TOP/target}/bench}
WORK= BUS= DAEMON_PID= _bus_pid=

bench_cleanup() {
  daemon_stop
  if [ -n "$_bus_pid" ]; then kill "$_bus_pid" 2>/dev/null; wait "$_bus_pid" 2>/dev/null; _bus_pid=; fi
  rm -f /etc/pam.d/stepup-bench-*-"$$"
  [ -n "$WORK" ] && rm -rf "$WORK"
  return 0
}

bench_init() { # TAG
  [ "$(id -u)" -eq 0 ] || { echo "run as root (PAM service files live in /etc/pam.d)" >&2; exit 1; }
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  WORK=$(mktemp -d "/tmp/stepup-bench-$1.XXXXXX")
  chmod 755 "$WORK"
  mkdir -p "$RAW"
  cc -O2 -Wall -o "$WORK/pam_bench" "$TOP/bench/pam_bench.c" -lpam
}

# bench_world TAG: bench_init, then a private bus and a stepupd whose
# policy allows the user "fast" without a factor and asks everyone else for
# TOTP. Sets $out, the section's raw-data directory (emptied).
bench_world() {
  bench_init "$1"
  out=$RAW/$1
  rm -rf "$out"; mkdir -p "$out"
  bus_start
  config_dir "$WORK/etc" '[defaults]
action = "step_up"
methods = ["totp"]

[[rule]]
name = "bench-allow"
user = ["fast"]
action = "allow"'
  state_dir "$WORK/state"
  daemon_start "$WORK/etc" "$WORK/state"
}

bus_start() {
  private_bus "$WORK" || { echo "dbus-daemon did not start" >&2; exit 1; }
  _bus_pid=$PRIVATE_BUS_PID
}

bus_pid() { echo "$_bus_pid"; }

# daemon_start CONFIG_DIR STATE_DIR: stepupd, ready when `status` answers.
daemon_start() {
  "$BIN/stepupd" --config-dir "$1" --state-dir "$2" --bus-address "$BUS" 2>"$WORK/stepupd.log" &
  DAEMON_PID=$!
  local _
  for _ in $(seq 600); do ctl status >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "stepupd did not start:" >&2; cat "$WORK/stepupd.log" >&2; exit 1
}

daemon_stop() {
  if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=; fi
}

ctl() { "$BIN/stepupctl" --bus-address "$BUS" "$@"; }

# config_dir DIR POLICY_TEXT: a root-owned 0755 dir with stepup.toml (0644).
config_dir() {
  mkdir -p "$1"; chmod 755 "$1"
  printf '%s\n' "$2" > "$1/stepup.toml"; chmod 644 "$1/stepup.toml"
}

# state_dir DIR: an empty 0700 state directory.
state_dir() { mkdir -p "$1"; chmod 700 "$1"; }

# pam_service NAME LINE...: /etc/pam.d/stepup-bench-NAME-PID; prints the
# service name. (Called in $(…), a subshell: bench_cleanup finds the files
# by the script's PID, which $$ still is there.)
pam_service() {
  local name=stepup-bench-$1-$$; shift
  printf '%s\n' "$@" > "/etc/pam.d/$name"
  echo "$name"
}

stepup_line() { echo "auth required $BIN/libpam_stepup.so bus=$BUS"; }

# proc_ticks PID: utime+stime in clock ticks.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# proc_kib PID FIELD: VmRSS / VmHWM in KiB.
proc_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
# Reset the peak RSS (VmHWM) of PID to its current RSS.
reset_peak() { echo 5 > "/proc/$1/clear_refs"; }

machine_line() {
  local cpu
  cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
  echo "$(nproc) × $cpu, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
}
