#!/usr/bin/env bash
# Instructions per device fault and per CPU-fault migrate-back, counted by callgrind: the
# repeatable measure of the fault path's own work (times on this shared machine vary by 2x
# between runs; these counts by less than 1%). User-space instructions only: the kernel's
# work (the UFFDIO_MOVE itself) is not counted.
#
#   scripts/instructions.sh [CHUNK]     CHUNK: 4096 (default), 65536 or 2097152
#
# Builds svm-fault-probe and SimDevice in release, copies them without debug information
# (valgrind cannot read Swift's), and runs the probe twice under callgrind, with 1 and with
# 3 rounds over 64 ranges; the difference, divided by the 128 extra faults, is the steady
# cost of one fault and of one migrate-back. A third run (256 against 512 first faults) gives
# the cost of a range's first fault.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh
chunk="${1:-4096}"
[[ "$chunk" =~ ^(4096|65536|2097152)$ ]] || { echo "usage: scripts/instructions.sh [4096|65536|2097152]" >&2; exit 2; }
for product in svm-fault-probe SimDevice; do
    if ! log=$(swift build -c release --product "$product" 2>&1); then echo "$log" >&2; exit 1; fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/plugins"
cp .build/release/svm-fault-probe "$work/" && strip --strip-debug "$work/svm-fault-probe"
cp .build/release/libSimDevice.so "$work/plugins/" && strip --strip-debug "$work/plugins/libSimDevice.so"

# The instructions collected inside `function` (a callgrind --toggle-collect pattern).
count() {
    local function="$1" ranges="$2" rounds="$3"
    valgrind --tool=callgrind --toggle-collect="$function" --callgrind-out-file="$work/out" \
        "$work/svm-fault-probe" "$chunk" "$ranges" "$rounds" "$work/plugins" 2>&1 >/dev/null \
        | sed -n 's/.*Collected : //p' | tr -d ,
}
device='*SVMContextC17handleDeviceFault*'
cpu='*CPUMirrorC8dispatch*'
steady=$(( ($(count "$device" 64 3) - $(count "$device" 64 1)) / 128 ))
home=$(( ($(count "$cpu" 64 3) - $(count "$cpu" 64 1)) / 128 ))
first=$(( ($(count "$device" 512 0) - $(count "$device" 256 0)) / 256 ))
echo "chunk $chunk: first device fault $first instructions; steady device fault $steady; CPU-fault migrate-back $home"
