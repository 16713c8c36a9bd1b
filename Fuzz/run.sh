#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Package.swift, every module with -sanitize=fuzzer, scratch path
# .build-fuzz) and runs each for FUZZ_SECONDS (default 60) on its committed seeds (Fuzz/Corpus/T) plus
# a working corpus of its own (.run/fuzz/corpus/T, where new inputs go: the committed seeds stay as
# they are). Prints executions, coverage and corpus size per target. Exit status 1 if any target
# crashed, broke an invariant, hung or ran out of memory; the input is saved in .run/fuzz/artifacts/T/.
#
#   Fuzz/run.sh                      every target
#   FUZZ_SECONDS=20 Fuzz/run.sh json lease
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-60}
all=(payment-header json lease siwx redis-reply report config)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
mkdir -p .run/fuzz

# lld: SwiftPM gives each executable its own `main` by --defsym, which gold refuses next to
# libFuzzer's (see Targets/Driver/FuzzDriver.c).
flags=(-Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -use-ld=lld)
started=$(date +%s)
if ! swift build --package-path Fuzz --scratch-path .build-fuzz "${flags[@]}" >.run/fuzz/build.log 2>&1; then
    grep -v -e '^\[' .run/fuzz/build.log | tail -40
    echo "fuzz build failed (.run/fuzz/build.log)" >&2
    exit 1
fi
bin=$(swift build --package-path Fuzz --scratch-path .build-fuzz "${flags[@]}" --show-bin-path)
echo "fuzz targets built in $(( $(date +%s) - started )) s"

failed=()
printf '%-15s %10s %8s %8s %7s %9s %6s  %s\n' target execs cov ft corpus exec/s secs result
for target in "${targets[@]}"; do
    work="$root/.run/fuzz/corpus/$target"
    artifacts="$root/.run/fuzz/artifacts/$target"
    log="$root/.run/fuzz/$target.log"
    mkdir -p "$work" "$artifacts"
    begin=$(date +%s)
    status=0
    # Swift's own backtracer would take the crash signal from libFuzzer, which then saves no input.
    SWIFT_BACKTRACE=enable=no "$bin/fuzz-$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$artifacts/" "$work" "Fuzz/Corpus/$target" >"$log" 2>&1 || status=$?
    took=$(( $(date +%s) - begin ))
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: U/SIZE ... exec/s: E rss: R".
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    field() { sed -nE "s|.* $1: ([^ ]+).*|\\1|p" <<<"$last"; }
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log")
    result=ok
    if [ "$status" -ne 0 ]; then result="FAILED (exit $status)"; failed+=("$target"); fi
    printf '%-15s %10s %8s %8s %7s %9s %6s  %s\n' "$target" "${execs:-?}" "$(field cov)" "$(field ft)" \
        "$(field corp | cut -d/ -f1)" "$(field exec/s)" "$took" "$result"
    if [ "$status" -ne 0 ]; then
        grep -E 'invariant broken|Fatal error|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" \
            | head -20 | sed 's/^/    /'
        echo "    full log: $log"
    fi
done
echo "fuzzing took $(( $(date +%s) - started )) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (inputs in .run/fuzz/artifacts/)" >&2
    exit 1
fi
