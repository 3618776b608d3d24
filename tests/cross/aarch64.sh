#!/bin/sh
# Checks the context switch on aarch64 under qemu-user, and natively on the
# host: builds tests/cross/switch_selftest.c (the checks of switch_checks.h)
# with runtime/switch.c and the architecture's switch_<arch>.S, and runs it.
#
# The aarch64 builds run on two emulated cores: cortex-a53 (ARMv8.0, no
# pointer authentication) and max (with PAC, so a -mbranch-protection build
# really signs and authenticates return addresses around the switch).
#
# Needs: apt-get install gcc-aarch64-linux-gnu qemu-user
# Environment: CC (native compiler, default cc), CROSS_CC (default
# aarch64-linux-gnu-gcc), QEMU (default qemu-aarch64), QEMU_LD_PREFIX
# (default /usr/aarch64-linux-gnu).
# Exit status: 0 all passed; 1 a build or check failed; 77 (skip) no cross
# compiler or qemu, and the native run, if any, passed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

: "${CC:=cc}"
: "${CROSS_CC:=aarch64-linux-gnu-gcc}"
: "${QEMU:=qemu-aarch64}"
: "${QEMU_LD_PREFIX:=/usr/aarch64-linux-gnu}"

cflags="-std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Wshadow -Wstrict-prototypes
 -Wno-unused-parameter -Werror -I$root/runtime -I$here"
sources="$here/switch_selftest.c $root/runtime/switch.c"
failed=0
n=0

# check LABEL COMPILER ASM "FLAGS" RUNNER...: builds with COMPILER and FLAGS,
# then runs the binary through RUNNER (nothing for a native run).
check() {
    label=$1 cc=$2 asm=$3 flags=$4
    shift 4
    n=$((n + 1))
    exe="$tmp/selftest$n"
    echo "== $label"
    # shellcheck disable=SC2086 # flags are word lists
    if ! "$cc" $cflags $flags $sources "$root/runtime/$asm" -lm -o "$exe"; then
        echo "FAIL $label: build failed"
        failed=1
        return
    fi
    if ! "$@" "$exe"; then
        echo "FAIL $label"
        failed=1
    fi
}

case $(uname -m) in
x86_64) native_asm=switch_x86_64.S ;;
aarch64 | arm64) native_asm=switch_aarch64.S ;;
*) native_asm= ;;
esac
if [ -n "$native_asm" ] && command -v "$CC" >/dev/null 2>&1; then
    check "native $(uname -m) -O2" "$CC" "$native_asm" "-O2 -fno-omit-frame-pointer"
    check "native $(uname -m) -O0" "$CC" "$native_asm" "-O0"
else
    echo "# no native run (host $(uname -m), CC=$CC)"
fi

if ! command -v "$CROSS_CC" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1 ||
    [ ! -d "$QEMU_LD_PREFIX" ]; then
    echo "# skip aarch64: needs $CROSS_CC, $QEMU and $QEMU_LD_PREFIX" \
        "(apt-get install gcc-aarch64-linux-gnu qemu-user)"
    [ "$failed" -ne 0 ] && exit 1
    exit 77
fi

check "aarch64 -O2, qemu cortex-a53" "$CROSS_CC" switch_aarch64.S "-O2 -fno-omit-frame-pointer" \
    "$QEMU" -cpu cortex-a53 -L "$QEMU_LD_PREFIX"
check "aarch64 -O0, qemu cortex-a53" "$CROSS_CC" switch_aarch64.S "-O0" \
    "$QEMU" -cpu cortex-a53 -L "$QEMU_LD_PREFIX"
check "aarch64 -O2 -mbranch-protection=standard, qemu max (PAC)" "$CROSS_CC" switch_aarch64.S \
    "-O2 -mbranch-protection=standard" "$QEMU" -cpu max -L "$QEMU_LD_PREFIX"

if [ "$failed" -ne 0 ]; then
    echo "aarch64.sh: FAILED"
    exit 1
fi
echo "aarch64.sh: all passed"
exit 0
