# Sourced by scripts/demo.sh and bench/*.sh: a private system bus with the
# D-Bus policy stepup ships, a private stepupd, and one new PAM service file
# /etc/pam.d/stepup-<tag>-<pid>. `sandbox_stop` (run on EXIT) undoes it all.
#
#   sandbox_start BIN_DIR POLICY_FILE TAG [EXTRA_MODULE_ARGS]
#   → SANDBOX, BUS, SERVICE, PAMFILE, CTL (stepupctl command with --bus-address)
#
# With SANDBOX_JOURNAL=1, events go to a systemd-journald of the sandbox's
# own (a journal namespace, JOURNAL_NS; none of the host's journal is read
# or written), when systemd-journald is installed.

SANDBOX= BUS= SERVICE= PAMFILE= CTL= JOURNAL_NS= _sandbox_bus_pid= _sandbox_daemon_pid= _sandbox_journald_pid=

sandbox_stop() {
  if [ -n "$_sandbox_daemon_pid" ]; then kill "$_sandbox_daemon_pid" 2>/dev/null; wait "$_sandbox_daemon_pid" 2>/dev/null; fi
  if [ -n "$_sandbox_bus_pid" ]; then kill "$_sandbox_bus_pid" 2>/dev/null; wait "$_sandbox_bus_pid" 2>/dev/null; fi
  if [ -n "$_sandbox_journald_pid" ]; then
    kill "$_sandbox_journald_pid" 2>/dev/null; wait "$_sandbox_journald_pid" 2>/dev/null
    rm -rf "/run/systemd/journal.$JOURNAL_NS" /run/log/journal/*."$JOURNAL_NS" /var/log/journal/*."$JOURNAL_NS"
  fi
  [ -n "$PAMFILE" ] && rm -f "$PAMFILE"
  [ -n "$SANDBOX" ] && rm -rf "$SANDBOX"
  return 0
}

# private_bus DIR: a dbus-daemon listening on DIR/bus with a system bus's
# default policy plus the D-Bus policy stepup ships (as the tests' Bus).
# Sets BUS and PRIVATE_BUS_PID; fails if the socket does not appear.
private_bus() {
  local dir=$1 top _
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cat > "$dir/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <include>$top/tests/fixtures/system-bus-defaults.conf</include>
  <include>$top/packaging/dbus/org.stepup.Daemon1.conf</include>
</busconfig>
XML
  BUS="unix:path=$dir/bus"
  dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --nosyslog 2>/dev/null &
  PRIVATE_BUS_PID=$!
  for _ in $(seq 200); do [ -S "$dir/bus" ] && break; sleep 0.05; done
  [ -S "$dir/bus" ]
}

sandbox_start() {
  local bin=$1 policy=$2 tag=$3 extra=${4:-}
  [ "$(id -u)" -eq 0 ] || { echo "run as root (PAM service files live in /etc/pam.d)" >&2; return 1; }
  for f in stepupd stepupctl libpam_stepup.so; do
    [ -e "$bin/$f" ] || { echo "$bin/$f is missing: build first" >&2; return 1; }
  done
  trap sandbox_stop EXIT
  trap 'exit 130' INT TERM
  SANDBOX=$(mktemp -d "/tmp/stepup-$tag.XXXXXX")
  chmod 755 "$SANDBOX"
  mkdir -p "$SANDBOX/etc" "$SANDBOX/state"
  chmod 700 "$SANDBOX/state"
  install -m 0644 "$policy" "$SANDBOX/etc/stepup.toml"
  if [ -n "${SANDBOX_JOURNAL:-}" ] && [ -x /lib/systemd/systemd-journald ]; then
    JOURNAL_NS=stepup$tag$$
    /lib/systemd/systemd-journald "$JOURNAL_NS" >/dev/null 2>&1 &
    _sandbox_journald_pid=$!
    for _ in $(seq 200); do [ -S "/run/systemd/journal.$JOURNAL_NS/socket" ] && break; sleep 0.05; done
    printf '\n[audit]\njournal_socket = "/run/systemd/journal.%s/socket"\n' "$JOURNAL_NS" >> "$SANDBOX/etc/stepup.toml"
    extra="$extra journal_socket=/run/systemd/journal.$JOURNAL_NS/socket"
  fi
  private_bus "$SANDBOX" || { echo "dbus-daemon did not start" >&2; return 1; }
  _sandbox_bus_pid=$PRIVATE_BUS_PID
  CTL="$bin/stepupctl --bus-address $BUS"
  "$bin/stepupd" --config-dir "$SANDBOX/etc" --state-dir "$SANDBOX/state" --bus-address "$BUS" 2>"$SANDBOX/audit.log" &
  _sandbox_daemon_pid=$!
  for _ in $(seq 200); do $CTL status >/dev/null 2>&1 && break; sleep 0.05; done
  $CTL status >/dev/null || { echo "stepupd did not start:" >&2; cat "$SANDBOX/audit.log" >&2; return 1; }
  SERVICE=stepup-$tag-$$
  PAMFILE=/etc/pam.d/$SERVICE
  printf 'auth required %s bus=%s %s\naccount required pam_permit.so\n' "$bin/libpam_stepup.so" "$BUS" "$extra" > "$PAMFILE"
}
