#!/usr/bin/env bash
# Installs what SVMFramework needs on Debian 12 and puts Swift on PATH. Sourced by run.sh
# and test.sh; safe to run again (it installs only what is missing).
set -euo pipefail

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH. Install Swift 6 for Debian 12 from swift.org" \
         "(for example into /opt/swift) and run this again." >&2
    exit 1
fi

# libdrm and libpciaccess: the XeDevice plugin; pkg-config: SwiftPM finds them with it;
# a C compiler: the tests build C plugins the way an external author would; gdb: test.sh
# prints the thread stacks of a test run that hangs; libstdc++'s headers: the tests' small C++
# target (new and delete); valgrind: scripts/instructions.sh counts a fault's instructions.
packages=(libdrm-dev libpciaccess-dev pkg-config gcc gdb libstdc++-12-dev valgrind)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
