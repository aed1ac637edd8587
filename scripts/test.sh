#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): installs
# dependencies, starts the local services, builds, runs the whole test
# suite, then the unit and integration tests again under AddressSanitizer +
# UBSan. Test tiers are ctest labels: unit (C unit, conformance, Python
# differential and CLI tests, no services) and integration (against the
# services of scripts/services.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
"$here/scripts/install-deps.sh"

# -- services: the local services of scripts/services.sh (docs/services.md) run
# for every ctest below and stop on exit; integration tests fail, not skip,
# when one is missing (DTK_REQUIRE_SERVICES=1).
"$here/scripts/install-services.sh"
trap '"$here/scripts/services.sh" stop' EXIT
"$here/scripts/services.sh" start
eval "$("$here/scripts/services.sh" env)"
export DTK_REQUIRE_SERVICES=1
# -- end of services

echo "== build" >&2
"$here/scripts/build.sh" "$here/build" -DDTK_TESTS=ON
echo "== tests" >&2
ctest --test-dir "$here/build" --output-on-failure -j "$jobs" --timeout 600

echo "== tests under AddressSanitizer + UBSan" >&2
DTK_BUILD_TYPE=Debug "$here/scripts/build.sh" "$here/build-asan" -DDTK_SANITIZE=ON -DDTK_TESTS=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir "$here/build-asan" --output-on-failure -j "$jobs" --timeout 900 -L 'unit|integration'
echo "== all tests passed" >&2
