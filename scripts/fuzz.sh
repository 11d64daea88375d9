#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets in fuzz/ for a while each, on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 15 s; all targets)
#
# Targets: packet_path (the worker's packet path), api_request (control API), config (config file),
# keepalived (keepalived.conf).
# New inputs go to a scratch corpus, read on top of the committed fuzz/corpus/<target>, so a run
# leaves the tree clean; FUZZ_KEEP_CORPUS=1 adds them to fuzz/corpus/<target> instead (long runs,
# then `cargo fuzz cmin`). Exits non-zero on the first target that crashes and prints the artifact.
# Environment: FUZZ_SANITIZER (default none: rvs has no unsafe code; e.g. address), FUZZ_NICE
# (default 19).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-15}
[ $# -gt 0 ] && shift
ALL=(packet_path api_request config keepalived sync_wire)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL[@]}")
case $secs in '' | *[!0-9]*)
    echo "fuzz: SECONDS_PER_TARGET must be a number, got \"$secs\"" >&2
    exit 2
    ;;
esac

# shellcheck source=lib/install_cargo_fuzz.sh
. "$root/scripts/lib/install_cargo_fuzz.sh"
install_cargo_fuzz

# With `--sanitizer none` cargo-fuzz passes only stable rustc flags (sancov passes, --cfg fuzzing,
# debug assertions); a sanitizer adds -Zsanitizer=..., which the stable compiler accepts with
# RUSTC_BOOTSTRAP=1. No nightly toolchain is needed either way.
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
nice_level=${FUZZ_NICE:-19}
cd "$root/fuzz"

max_len() {
    case $1 in
        packet_path) echo 4096 ;;
        *) echo 8192 ;;
    esac
}

for t in "${targets[@]}"; do
    [ -f "fuzz_targets/$t.rs" ] || { echo "fuzz: no target \"$t\" (have: ${ALL[*]})" >&2; exit 2; }
done

echo "fuzz: building ${targets[*]} (sanitizer $sanitizer)"
for t in "${targets[@]}"; do
    nice -n "$nice_level" cargo fuzz build --sanitizer "$sanitizer" "$t"
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
        dirs=("corpus/$t")
    else
        mkdir -p "$scratch/$t"
        dirs=("$scratch/$t" "corpus/$t")
    fi
    dict=()
    [ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
    log="$scratch/$t.log"
    echo "fuzz: $t for ${secs}s"
    set +e
    nice -n "$nice_level" cargo fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=30 \
        "${dict[@]}" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -n 1 | sed "s/^/fuzz: $t: /" || true
    grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/fuzz: $t: /" || true
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz: $t FAILED (exit $rc)" >&2
        grep -E "panicked at|ERROR: libFuzzer|SUMMARY" -A 3 "$log" | head -n 30 >&2 || true
        artifact=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //')
        if [ -n "$artifact" ]; then
            echo "fuzz: crash artifact: fuzz/$artifact" >&2
            echo "fuzz: reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t $artifact)" >&2
            echo "fuzz: minimise:  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer $sanitizer $t $artifact)" >&2
        else
            tail -n 20 "$log" >&2
        fi
        break
    fi
done
exit $status
