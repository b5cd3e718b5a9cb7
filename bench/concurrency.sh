#!/usr/bin/env bash
# Section 2 of `make bench`: N concurrent clients (processes, each in an
# authentication loop through the real module: pam_start / pam_authenticate
# / pam_end on the stepup allow path, one full Begin per authentication)
# for SECONDS each, N = 1, 16, 64, 256. For each N: every latency and
# result, and stepupd's (and dbus-daemon's) CPU time and peak RSS over the
# window (peak reset before each N through /proc/PID/clear_refs).
# Then the same load on pam_permit alone (the floor: what libpam and the
# driver cost on this machine at that concurrency, with no daemon at all).
# Usage: bench/concurrency.sh [SECONDS] [N...]   (default 8; 1 16 64 256)
# Writes $RAW/conc/<N>.txt and permit-<N>.txt (us=… rc=… lines) and
# $RAW/conc/summary.tsv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
seconds=${1:-8}
shift || true
levels=("${@:-1 16 64 256}")
read -r -a levels <<< "${levels[*]}"

bench_world conc
svc=$(pam_service conc "$(stepup_line)")
permit=$(pam_service conc-permit 'auth required pam_permit.so')
bpid=$(bus_pid)
hz=$(getconf CLK_TCK)

"$WORK/pam_bench" -n 50 "$svc" fast >/dev/null   # warm-up
printf 'clients\tseconds\tdaemon_cpu_s\tdaemon_peak_kib\tdaemon_rss_kib\tbus_cpu_s\tdriver_ok\n' > "$out/summary.tsv"
for n in "${levels[@]}"; do
  reset_peak "$DAEMON_PID"
  d0=$(proc_ticks "$DAEMON_PID"); b0=$(proc_ticks "$bpid")
  ok=1
  "$WORK/pam_bench" -c "$n" -d "$seconds" "$svc" fast > "$out/$n.txt" || ok=0
  d1=$(proc_ticks "$DAEMON_PID"); b1=$(proc_ticks "$bpid")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$seconds" \
    "$(awk "BEGIN {printf \"%.3f\", ($d1 - $d0) / $hz}")" \
    "$(proc_kib "$DAEMON_PID" VmHWM)" "$(proc_kib "$DAEMON_PID" VmRSS)" \
    "$(awk "BEGIN {printf \"%.3f\", ($b1 - $b0) / $hz}")" "$ok" >> "$out/summary.tsv"
  echo "concurrency: $n clients: $(wc -l < "$out/$n.txt") authentications, $(grep -vc 'rc=0$' "$out/$n.txt" || true) failed"
  sleep 1
done
for n in "${levels[@]}"; do
  "$WORK/pam_bench" -c "$n" -d "$seconds" "$permit" fast > "$out/permit-$n.txt" || true
  echo "concurrency: pam_permit, $n clients: $(wc -l < "$out/permit-$n.txt") authentications"
done
