#!/usr/bin/env bash
# All tests: formatting, clippy, unit tests, then the end-to-end tests with real kernel peers in
# network namespaces (root needed). Sets a fresh machine up first: scripts/setup.sh is idempotent
# and quick when everything is already there, so the one command works on a new machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
    step "machine set-up (scripts/setup.sh)"
    bash scripts/setup.sh
else
    echo "test: not root, skipping scripts/setup.sh (the end-to-end tests need root anyway)" >&2
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "unit tests"
cargo test --workspace --quiet 2>&1 | tee /tmp/rvs-unit.$$ | grep -E '^(test result|failures:|    |---- )' || true
if grep -q 'test result: FAILED\|error\[' /tmp/rvs-unit.$$ || ! grep -q 'test result: ok' /tmp/rvs-unit.$$; then
    cat /tmp/rvs-unit.$$; rm -f /tmp/rvs-unit.$$; exit 1
fi
unit_passed=$(grep -o '[0-9]* passed' /tmp/rvs-unit.$$ | awk '{s+=$1} END {print s}')
rm -f /tmp/rvs-unit.$$

step "fuzz smoke: packet path, API requests, config file, keepalived.conf (15 s each)"
bash scripts/fuzz.sh 15

step "release build"
cargo build --release --workspace --quiet

if [ "$(id -u)" -ne 0 ]; then
    echo "end-to-end tests need root (network namespaces, DPDK); skipped" >&2
    echo "unit: ${unit_passed} passed, 0 failed"
    exit 1
fi

e2e_pass=0; e2e_fail=0; failed=()
for t in scripts/e2e/[0-9]*.sh; do
    [ -n "${RVS_E2E:-}" ] && [[ "$t" != *"$RVS_E2E"* ]] && continue
    step "e2e: $t"
    if timeout 900 bash "$t"; then e2e_pass=$((e2e_pass + 1)); else e2e_fail=$((e2e_fail + 1)); failed+=("$t"); fi
done

step "summary"
echo "unit tests: ${unit_passed} passed"
[ ${#failed[@]} -eq 0 ] || echo "failed end-to-end suites: ${failed[*]}"
echo "e2e: ${e2e_pass} passed, ${e2e_fail} failed"
[ "$e2e_fail" -eq 0 ]
