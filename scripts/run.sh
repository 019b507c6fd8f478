#!/usr/bin/env bash
# The main job: build everything and run svm-cli. With no arguments it runs the default
# experiment (`svm-cli run`); with arguments it runs `svm-cli ARGUMENTS`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh

swift build
cli="$(swift build --show-bin-path)/svm-cli"
if [ $# -gt 0 ]; then
    exec "$cli" "$@"
fi
exec "$cli" run
