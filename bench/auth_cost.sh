#!/usr/bin/env bash
# Section 1 of `make bench`: per-authentication cost with an in-process
# driver (bench/pam_bench.c: pam_start / pam_authenticate / pam_end in a
# loop, prompts answered from the conversation), all paths in one run:
#   pam_permit (the floor) · pam_google_authenticator · pam_oath (the peers,
#   with a known secret, codes from oathtool) · stepup allow · stepup TOTP.
# BATCHES processes per path, interleaved (permit, GA, oath, allow, TOTP,
# permit, …) so that background load falls on every path alike; each
# process makes ROUNDS+1 authentications and its first one (the module's
# first load in that process) is kept apart as "cold".
# Usage: bench/auth_cost.sh [BATCHES [ROUNDS]]   (default 10 × 40)
# Writes $RAW/auth/<path>.warm and .cold (microseconds, one per line).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
batches=${1:-10}
rounds=${2:-40}
per=$((rounds + 1))
users=$((batches * per))

bench_world auth

# One known secret for every credential of every module; one user per
# authentication, so each code is accepted exactly once everywhere (all
# three refuse a replayed code and rewrite state to remember it).
secret=$(head -c 20 /dev/urandom | base32 | tr -d '=')
hex=$(printf '%s' "$secret" | base32 -d | od -An -tx1 | tr -d ' \n')
mkdir -p "$WORK/ga" "$WORK/oath"; chmod 700 "$WORK/ga" "$WORK/oath"
: > "$WORK/oath/users.oath"
for i in $(seq 0 $((users - 1))); do
  printf '%s' "$secret" | ctl enroll totp "t$i" --secret - --no-qr >/dev/null
  # google-authenticator's own file format, as its enrolment tool writes it
  # with -t -d -r 3 -R 30 -w 3 (time-based, no reuse, rate limit).
  printf '%s\n" RATE_LIMIT 3 30\n" WINDOW_SIZE 3\n" DISALLOW_REUSE\n" TOTP_AUTH\n' "$secret" > "$WORK/ga/g$i"
  chmod 600 "$WORK/ga/g$i"
  printf 'HOTP/T30 o%d - %s\n' "$i" "$hex" >> "$WORK/oath/users.oath"
done
chmod 600 "$WORK/oath/users.oath"

svc_permit=$(pam_service permit 'auth required pam_permit.so')
svc_ga=$(pam_service ga "auth required pam_google_authenticator.so secret=$WORK/ga/\${USER} user=root")
svc_oath=$(pam_service oath "auth required pam_oath.so usersfile=$WORK/oath/users.oath window=2 digits=6")
svc_stepup=$(pam_service stepup "$(stepup_line)")

run() { # NAME SERVICE USER-PATTERN BATCH [ANSWER]
  local name=$1 service=$2 user=$3 b=$4 answer=${5:-}
  local args=(-n "$per" -o $((b * per)))
  [ -n "$answer" ] && args+=(-a "$answer")
  if ! "$WORK/pam_bench" "${args[@]}" "$service" "$user" > "$WORK/run.out"; then
    echo "auth_cost: $name batch $b: $(grep -vc 'rc=0$' "$WORK/run.out") of $per authentications failed" >&2
    grep -v 'rc=0$' "$WORK/run.out" | head -3 >&2
    exit 1
  fi
  sed -n '1s/^us=\([0-9]*\) .*/\1/p' "$WORK/run.out" >> "$out/$name.cold"
  sed -n '2,$s/^us=\([0-9]*\) .*/\1/p' "$WORK/run.out" >> "$out/$name.warm"
}

for b in $(seq 0 $((batches - 1))); do
  code=$(oathtool --totp -b "$secret")
  run pam_permit "$svc_permit" fast "$b"
  run pam_google_authenticator "$svc_ga" 'g%d' "$b" "$code"
  run pam_oath "$svc_oath" 'o%d' "$b" "$code"
  run stepup_allow "$svc_stepup" fast "$b"
  run stepup_totp "$svc_stepup" 't%d' "$b" "$code"
done
echo "auth_cost: $batches × $rounds authentications per path (+1 cold each) in $out"
