#!/usr/bin/env bash
# stepup demo: a private system bus with the shipped D-Bus policy, a private
# stepupd on the demo policy, and a new PAM service file
# /etc/pam.d/stepup-demo-<pid> (removed on exit). No existing PAM file,
# system bus or daemon is touched. AUTO=1 answers the prompts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=${CARGO_TARGET_DIR:-$top/target}/debug
auto=${AUTO:-}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (PAM service files live in /etc/pam.d)"; exit 1; }
for f in stepupd stepupctl libpam_stepup.so; do
  [ -e "$bin/$f" ] || { echo "demo: $bin/$f missing; run 'make demo' (it builds first)"; exit 1; }
done

sandbox=$(mktemp -d /tmp/stepup-demo.XXXXXX)
chmod 755 "$sandbox"
service=stepup-demo-$$
pamfile=/etc/pam.d/$service
bus_pid= daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null || true
  rm -f "$pamfile"
  rm -rf "$sandbox"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
pause() { [ -n "$auto" ] || read -r -p "  (press Enter) " _; }
run() { printf '  $ %s\n' "$*"; "$@"; }

mkdir -p "$sandbox/etc" "$sandbox/state"
chmod 700 "$sandbox/state"
install -m 0644 demo/stepup.toml "$sandbox/etc/stepup.toml"
cat > "$sandbox/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$sandbox/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>$top/packaging/dbus/org.stepup.Daemon1.conf</include>
</busconfig>
XML
bus="unix:path=$sandbox/bus"

bold "stepup demo — everything runs in $sandbox"
echo "  A private system bus (with the D-Bus policy stepup ships), a private stepupd,"
echo "  and a new PAM service '$service' that stacks only pam_stepup.so."
dbus-daemon --config-file="$sandbox/bus.conf" --nofork --nopidfile --nosyslog 2>/dev/null &
bus_pid=$!
for _ in $(seq 100); do [ -S "$sandbox/bus" ] && break; sleep 0.05; done
"$bin/stepupd" --config-dir "$sandbox/etc" --state-dir "$sandbox/state" --bus-address "$bus" 2>"$sandbox/audit.log" &
daemon_pid=$!
for _ in $(seq 100); do "$bin/stepupctl" --bus-address "$bus" status >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/stepupctl" --bus-address "$bus" status >/dev/null || { echo "stepupd did not start:"; cat "$sandbox/audit.log"; exit 1; }
printf 'auth required %s bus=%s timeout=10\naccount required pam_permit.so\n' "$bin/libpam_stepup.so" "$bus" > "$pamfile"

bold "The policy (demo/stepup.toml):"
grep -v '^#' demo/stepup.toml | sed '/^$/d; s/^/    /'
pause

bold "1. alice at the console: the rule 'alice-local' allows her without a prompt"
run pamtester "$service" alice authenticate
pause

bold "2. root from 203.0.113.9: the rule 'no-remote-root' denies"
run pamtester -I rhost=203.0.113.9 "$service" root authenticate || echo "  → refused, as the policy says"
pause

bold "3. demo is not enrolled yet: a step-up is required but impossible, so it fails"
run pamtester "$service" demo authenticate </dev/null || echo "  → refused, with a message saying why"
pause

bold "4. Enroll a TOTP authenticator for demo"
secret=$(head -c 20 /dev/urandom | base32 | tr -d '=')
if [ -n "$auto" ]; then
  run "$bin/stepupctl" --bus-address "$bus" enroll totp demo --secret "$secret" --label demo --no-qr
else
  run "$bin/stepupctl" --bus-address "$bus" enroll totp demo --secret "$secret" --label demo
  echo "  Scan the QR code with an authenticator app (Google Authenticator, Aegis, 1Password…)."
  echo "  No phone at hand? In another terminal:  oathtool --totp -b $secret"
  pause
fi

bold "5. demo steps up: type the 6-digit code"
if [ -n "$auto" ]; then
  code=$(oathtool --totp -b "$secret")
  echo "  (AUTO: answering with oathtool's code $code)"
  printf '%s\n' "$code" | pamtester "$service" demo authenticate \
    || { echo "demo: step-up with the right code failed"; cat "$sandbox/audit.log"; exit 1; }
else
  until pamtester "$service" demo authenticate; do
    echo "  That did not work; try again (Ctrl-C to stop)."
  done
  echo "  Now type the same code once more: a code is accepted only once."
  read -r -s -p "  Same code: " code; echo
fi

bold "6. The same code a second time is refused (replay protection, persisted on disk)"
echo "  (pamtester answers further prompts with empty lines once its input ends,"
echo "   so the attempt goes on until max_tries is used up)"
printf '%s\n' "$code" | pamtester "$service" demo authenticate && { echo "demo: replay accepted!"; exit 1; } || echo "  → refused"

bold "7. What the daemon recorded (its audit lines; no code or secret appears):"
sed 's/^/    /' "$sandbox/audit.log"

bold "Done: the sandbox and $pamfile are removed on exit."
