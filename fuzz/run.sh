#!/usr/bin/env bash
# Run every fuzz target for FUZZ_SECONDS (default 20) each, one after the
# other, single job; then print and save (fuzz/last-run.md) per-target
# executions, coverage (libFuzzer's cov/ft) and corpus size.
#
#   fuzz/run.sh                      # all targets
#   FUZZ_SECONDS=300 fuzz/run.sh policy_eval engine_requests
#
# cargo-fuzz needs nightly flags (-Zsanitizer); on stable Rust,
# RUSTC_BOOTSTRAP=1 unlocks them. FUZZ_SANITIZER=none skips AddressSanitizer
# (faster to build and run; every crate here is unsafe-free, so ASan mostly
# watches the bundled SQLite and dependencies). Inputs in
# fuzz/regressions/<target>/ are replayed first; a crash there or during
# fuzzing fails the run (the input is in fuzz/artifacts/<target>/).
set -uo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
SANITIZER=${FUZZ_SANITIZER:-address}
ALL=(config_parse policy_eval import_google_authenticator import_pam_u2f import_users_oath fido2_verify engine_requests)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || exit 1
fi
start=$(date +%s)
cargo fuzz build --sanitizer "$SANITIZER" >/dev/null 2>&1 || {
    cargo fuzz build --sanitizer "$SANITIZER" || exit 1
}
build_secs=$(( $(date +%s) - start ))
mkdir -p logs
status=0
rows=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if compgen -G "regressions/$t/*" >/dev/null; then
        if ! cargo fuzz run --sanitizer "$SANITIZER" "$t" regressions/"$t"/* >"logs/$t.regressions.log" 2>&1; then
            echo "fuzz: $t: a regression input fails again, see fuzz/logs/$t.regressions.log"
            status=1
        fi
    fi
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$')
    cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+')
    ft=$(grep -oE 'ft: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+')
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$done_line" | cut -d' ' -f2)
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$')
    result=ok
    if [ $rc -ne 0 ]; then
        result="CRASH (exit $rc): $(ls -t "artifacts/$t" | head -1)"
        status=1
        grep -m3 -E 'panicked|ERROR: ' "logs/$t.log" | sed 's/^/    /'
    fi
    row="| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${SECONDS_PER_TARGET}s | $result |"
    echo "$row"
    rows+=("$row")
done
{
    echo "# Last fuzz run"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, sanitizer $SANITIZER, ${SECONDS_PER_TARGET}s per target, one job each; build ${build_secs}s."
    echo
    echo "| target | executions | exec/s | cov | ft | corpus (inputs/bytes) | time | result |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >last-run.md
cat last-run.md
exit $status
