#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each one for a short time,
# two at a time (the CI machine has 2 cores). Fails on any crash, panic, timeout or
# out-of-memory, and prints one summary line per target.
#
#   tests/fuzz-smoke.sh [SECONDS_PER_TARGET]     (default 20)
#
# Environment:
#   FUZZ_TARGET_DIR   cargo target dir for the fuzz build (default: fuzz/target)
#   FUZZ_JOBS         targets run at once (default 2)
#   FUZZ_SANITIZER    sanitizer for the build (default: none; see fuzz/README.md)
#
# The toolchain here is stable, and cargo-fuzz passes nightly-only -Z flags to rustc;
# RUSTC_BOOTSTRAP=1 lets stable accept them. Nothing here needs the network except the
# one-time `cargo install cargo-fuzz` and the crates.io downloads of the first build.
set -euo pipefail

secs=${1:-20}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
jobs=${FUZZ_JOBS:-2}
sanitizer=${FUZZ_SANITIZER:-none}
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

echo "fuzz-smoke: building all targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir"
built=$(date +%s)
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t targets < <(cargo fuzz list)
[ "${#targets[@]}" -gt 0 ] || {
    echo "fuzz-smoke: no fuzz targets found" >&2
    exit 1
}

# Runs one target; its libFuzzer output goes to $work/<target>.log, its exit code to
# $work/<target>.rc. The seeds are read-only input: new corpus entries go to $work.
run_target() {
    local t=$1
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    local rc=0
    "$bin_dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
        "$work/corpus/$t" "fuzz/seeds/$t" >"$work/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$t.rc"
}

running=0
for t in "${targets[@]}"; do
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
for t in "${targets[@]}"; do
    rc=$(cat "$work/$t.rc" 2>/dev/null || echo missing)
    log="$work/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" = 0 ]; then
        status=ok
    else
        status=FAILED
        failed=$((failed + 1))
    fi
    printf 'fuzz %-24s %-6s %ss execs=%s cov=%s ft=%s\n' "$t" "$status" "$secs" \
        "${execs:-?}" "${cov:-?}" "${ft:-?}"
    if [ "$status" = FAILED ]; then
        echo "---- $t (exit $rc): last lines of its log ----"
        tail -n 40 "$log"
        for a in "$work/artifacts/$t"/*; do
            [ -e "$a" ] || continue
            mkdir -p "$root/fuzz/artifacts/$t"
            cp "$a" "$root/fuzz/artifacts/$t/"
            echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/$(basename "$a")"
        done
    fi
done

end=$(date +%s)
echo "fuzz-smoke: ${#targets[@]} targets, $((${#targets[@]} - failed)) passed, $failed failed;" \
    "build $((built - start)) s, total $((end - start)) s"
[ "$failed" -eq 0 ]
