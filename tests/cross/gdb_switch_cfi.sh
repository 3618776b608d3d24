#!/bin/sh
# Single-steps every instruction of crew__ctx_switch under gdb and checks that
# the debugger unwinds correctly at each one (gdb_switch_cfi.py): natively,
# and on aarch64 under qemu-user's gdb stub. This is what the self-test cannot
# see from inside the program: the CFI of the switch itself, which perf and
# gdb use whenever a sample or a stop lands mid-switch.
#
# Needs: gdb; for aarch64 also gcc-aarch64-linux-gnu, qemu-user, gdb-multiarch.
# Environment: as aarch64.sh, plus GDB (default gdb) and GDB_MULTIARCH
# (default gdb-multiarch).
# Exit status: 0 all passed; 1 a build or check failed; 77 (skip) a tool is
# missing and whatever could run passed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d) || exit 1
qemu_pid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

: "${CC:=cc}"
: "${CROSS_CC:=aarch64-linux-gnu-gcc}"
: "${QEMU:=qemu-aarch64}"
: "${QEMU_LD_PREFIX:=/usr/aarch64-linux-gnu}"
: "${GDB:=gdb}"
: "${GDB_MULTIARCH:=gdb-multiarch}"

cflags="-std=c11 -D_GNU_SOURCE -O2 -g -I$root/runtime -I$here"
sources="$here/switch_selftest.c $root/runtime/switch.c"
check_name=fiber_to_fiber
failed=0
skipped=0

have() {
    command -v "$1" >/dev/null 2>&1
}

# build COMPILER ASM OUTPUT
build() {
    # shellcheck disable=SC2086 # flags are word lists
    "$1" $cflags $sources "$root/runtime/$2" -lm -o "$3" || {
        echo "FAIL: build with $1 failed"
        failed=1
        return 1
    }
}

case $(uname -m) in
x86_64) native_asm=switch_x86_64.S ;;
aarch64 | arm64) native_asm=switch_aarch64.S ;;
*) native_asm= ;;
esac
if [ -n "$native_asm" ] && have "$CC" && have "$GDB"; then
    echo "== native $(uname -m)"
    if build "$CC" "$native_asm" "$tmp/native"; then
        timeout 300 "$GDB" -q -batch -nx -x "$here/gdb_switch_cfi.py" \
            --args "$tmp/native" "$check_name" || failed=1
    fi
else
    echo "# skip native: needs $CC and $GDB on x86_64 or aarch64"
    skipped=1
fi

if have "$CROSS_CC" && have "$QEMU" && have "$GDB_MULTIARCH" && [ -d "$QEMU_LD_PREFIX" ]; then
    echo "== aarch64 under qemu"
    if build "$CROSS_CC" switch_aarch64.S "$tmp/aarch64"; then
        # A port per run, so that parallel runs do not collide. gdb retries
        # the connection until qemu listens (tcp auto-retry, on by default).
        port=$((20000 + $$ % 20000))
        timeout 300 "$QEMU" -g "$port" -L "$QEMU_LD_PREFIX" "$tmp/aarch64" "$check_name" &
        qemu_pid=$!
        timeout 300 "$GDB_MULTIARCH" -q -batch -nx -ex "set sysroot $QEMU_LD_PREFIX" \
            -ex "set tcp connect-timeout 30" -ex "file $tmp/aarch64" \
            -ex "target remote localhost:$port" -x "$here/gdb_switch_cfi.py" || failed=1
        wait "$qemu_pid" || failed=1
        qemu_pid=
    fi
else
    echo "# skip aarch64: needs $CROSS_CC, $QEMU, $GDB_MULTIARCH and $QEMU_LD_PREFIX"
    skipped=1
fi

if [ "$failed" -ne 0 ]; then
    echo "gdb_switch_cfi.sh: FAILED"
    exit 1
fi
if [ "$skipped" -ne 0 ]; then
    exit 77
fi
echo "gdb_switch_cfi.sh: all passed"
exit 0
