#!/usr/bin/env bash
# Runs the whole test suite: unit, scenario and end-to-end CLI tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh

swift build --build-tests
swift test --skip-build "$@"
