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

. scripts/lib/sandbox.sh
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
pause() { [ -n "$auto" ] || read -r -p "  (press Enter) " _; }
run() { printf '  $ %s\n' "$*"; "$@"; }

SANDBOX_JOURNAL=1 sandbox_start "$bin" demo/stepup.toml demo "timeout=10"
sandbox=$SANDBOX service=$SERVICE pamfile=$PAMFILE bus=$BUS

bold "stepup demo — everything runs in $sandbox"
echo "  A private system bus (with the D-Bus policy stepup ships), a private stepupd,"
echo "  and a new PAM service '$service' that stacks only pam_stepup.so."
bold "The policy (demo/stepup.toml):"
grep -v '^#' demo/stepup.toml | sed '/^$/d; s/^/    /'
pause

bold "1. alice at the console: the rule 'alice-local' allows her without a prompt"
run pamtester "$service" alice authenticate
pause

bold "2. root from 203.0.113.9: the rule 'no-remote-root' denies"
run pamtester -I rhost=203.0.113.9 "$service" root authenticate || echo "  → refused, as the policy says"
echo "  Why? Ask the daemon (a dry run; it changes nothing):"
run "$bin/stepupctl" --bus-address "$bus" explain --user root --service "$service" --rhost 203.0.113.9 | sed 's/^/    /'
pause

bold "3. With the sudo approval plugin, the command counts: alice restarting a service steps up"
echo "  (stepup_sudo.so in /etc/sudo.conf sends what sudo is about to run; the demo changes"
echo "   no system file, so it asks the daemon for a dry run with that command)"
run "$bin/stepupctl" --bus-address "$bus" explain --user alice --service sudo \
  --command "/usr/bin/systemctl restart nginx" --runas-user root | sed 's/^/    /'
pause

bold "4. demo is not enrolled yet: a step-up is required but impossible, so it fails"
run pamtester "$service" demo authenticate </dev/null || echo "  → refused, with a message saying why"
pause

bold "5. Enroll a TOTP authenticator for demo"
secret=$(head -c 20 /dev/urandom | base32 | tr -d '=')
if [ -n "$auto" ]; then
  run "$bin/stepupctl" --bus-address "$bus" enroll totp demo --secret "$secret" --label demo --no-qr
else
  run "$bin/stepupctl" --bus-address "$bus" enroll totp demo --secret "$secret" --label demo
  echo "  Scan the QR code with an authenticator app (Google Authenticator, Aegis, 1Password…)."
  echo "  No phone at hand? In another terminal:  oathtool --totp -b $secret"
  pause
fi

bold "6. demo steps up from a new address (198.51.100.7): stepup says why, then asks for the code"
if [ -n "$auto" ]; then
  code=$(oathtool --totp -b "$secret")
  echo "  (AUTO: answering with oathtool's code $code)"
  printf '%s\n' "$code" | pamtester -I rhost=198.51.100.7 "$service" demo authenticate \
    || { echo "demo: step-up with the right code failed"; cat "$sandbox/audit.log"; exit 1; }
else
  until pamtester -I rhost=198.51.100.7 "$service" demo authenticate; do
    echo "  That did not work; try again (Ctrl-C to stop)."
  done
  echo "  Now type the same code once more: a code is accepted only once."
  read -r -s -p "  Same code: " code; echo
fi

bold "7. The same code a second time is refused (replay protection, persisted on disk)"
echo "  (pamtester answers further prompts with empty lines once its input ends,"
echo "   so the attempt goes on until max_tries is used up)"
printf '%s\n' "$code" | pamtester "$service" demo authenticate && { echo "demo: replay accepted!"; exit 1; } || echo "  → refused"

if [ -n "$JOURNAL_NS" ]; then
  bold "8. One attempt, one query: every event of the step-up in step 6 shares its STEPUP_ATTEMPT"
  attempt=$(journalctl --namespace="$JOURNAL_NS" -o json STEPUP_EVENT=attempt_ended STEPUP_RHOST=198.51.100.7 \
    | head -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["STEPUP_ATTEMPT"])')
  run journalctl --namespace="$JOURNAL_NS" -o cat STEPUP_ATTEMPT="$attempt" | sed 's/^/    /'
  echo "  (journalctl -x adds what each event means once the packaged catalog is installed;"
  echo "   no code or secret appears in any event)"
  pause
  bold "9. The audit report: attempts by rule and outcome, success per method, alarms"
  run "$bin/stepupctl" audit report --namespace "$JOURNAL_NS" --state-dir "$sandbox/state" | sed 's/^/    /'
else
  bold "8. What the daemon recorded (its audit lines; no code or secret appears):"
  sed 's/^/    /' "$sandbox/audit.log"
fi

bold "Done: the sandbox and $pamfile are removed on exit."
