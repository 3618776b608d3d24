#!/bin/bash
# Package check: builds crew shared and static, installs each to a temporary
# prefix, moves the prefix (the package files must be relocatable) and builds
# and runs the out-of-tree consumers against it: CMake find_package, the build
# tree's export, and pkg-config. Also checks the shared library's exported
# symbols and SONAME, and that README.md's example is tests/package/app.c.
#
# Usage: check.sh SOURCE_DIR WORK_DIR   (WORK_DIR is wiped first)
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR WORK_DIR" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
work=$2
here=$src/tests/package

fail() {
    echo "package check: FAIL: $*" >&2
    exit 1
}
step() {
    echo "== $*"
}

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

step "README.md example == tests/package/app.c"
awk '/<!-- crew-example:end -->/ { inside = 0 }
     inside && !/^```/ { print }
     /<!-- crew-example:begin/ { inside = 1 }' "$src/README.md" >"$work/readme_example.c"
[ -s "$work/readme_example.c" ] || fail "no example between the crew-example markers in README.md"
diff -u "$here/app.c" "$work/readme_example.c" || fail "README.md's example differs from tests/package/app.c"

version=$(sed -nE 's/^project\(crew VERSION ([0-9]+)\.([0-9]+)\.[0-9]+.*/\1.\2/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "cannot read the project version from CMakeLists.txt"
generator=()
if command -v ninja >/dev/null; then
    generator=(-G Ninja)
fi
# The consumers are strict C11 so that the public headers stay warning-free for users.
consumer_cflags="-std=c11 -Wall -Wextra -Wpedantic -Werror"

# check_variant NAME SHARED(ON|OFF) JEMALLOC(ON|OFF)
check_variant() {
    local name=$1 shared=$2 jemalloc=$3
    local dir=$work/$name
    local build=$dir/build prefix=$dir/prefix
    step "$name: build and install (BUILD_SHARED_LIBS=$shared CREW_WITH_JEMALLOC=$jemalloc)"
    cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBUILD_SHARED_LIBS="$shared" -DCREW_WITH_JEMALLOC="$jemalloc" \
        -DCREW_BUILD_TESTS=OFF -DCREW_BUILD_BENCH=OFF >"$dir.configure.log" \
        || { cat "$dir.configure.log"; fail "$name: configure"; }
    cmake --build "$build" >"$dir.build.log" || { cat "$dir.build.log"; fail "$name: build"; }
    cmake --install "$build" --prefix "$dir/staging" >/dev/null
    mv "$dir/staging" "$prefix"

    local pcfile cmakedir lib
    pcfile=$(find "$prefix" -name crew.pc)
    cmakedir=$(dirname "$(find "$prefix" -name crewConfig.cmake)")
    [ -f "$pcfile" ] || fail "$name: crew.pc not installed"
    [ -f "$cmakedir/crewConfigVersion.cmake" ] || fail "$name: crewConfigVersion.cmake not installed"
    [ -f "$prefix/include/crew.h" ] || fail "$name: crew.h not installed"
    if grep -rn -e "$src" -e "$dir" -e crew_flags -e fsanitize "$cmakedir" "$pcfile"; then
        fail "$name: installed package files name build-only paths or targets (above)"
    fi

    step "$name: CMake consumer (installed prefix)"
    cmake -S "$here/cmake" -B "$dir/cmake-consumer" "${generator[@]}" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$consumer_cflags" >/dev/null
    cmake --build "$dir/cmake-consumer" >/dev/null
    "$dir/cmake-consumer/app" || fail "$name: CMake consumer app"

    step "$name: CMake consumer (build tree, crew_DIR=build)"
    cmake -S "$here/cmake" -B "$dir/buildtree-consumer" "${generator[@]}" \
        -Dcrew_DIR="$build" -DCMAKE_C_FLAGS="$consumer_cflags" >/dev/null
    cmake --build "$dir/buildtree-consumer" >/dev/null
    "$dir/buildtree-consumer/app" || fail "$name: build-tree consumer app"

    step "$name: pkg-config consumer"
    local static=()
    [ "$shared" = ON ] || static=(--static)
    export PKG_CONFIG_PATH
    PKG_CONFIG_PATH=$(dirname "$pcfile")
    pkg-config --validate crew || fail "$name: pkg-config --validate crew"
    pkg-config --print-errors --exists "crew >= $version" || fail "$name: crew.pc version"
    echo "pkg-config ${static[*]:+${static[*]} }--cflags --libs crew: $(pkg-config "${static[@]}" --cflags --libs crew)"
    CFLAGS=$consumer_cflags "$here/pkgconfig/build.sh" "$dir/pc-app" "${static[@]}"
    LD_LIBRARY_PATH=$(dirname "$pcfile")/.. "$dir/pc-app" || fail "$name: pkg-config consumer app"

    if [ "$shared" = ON ]; then
        lib=$(dirname "$pcfile")/../libcrew.so
        step "$name: exported symbols and SONAME of $(basename "$(readlink -f "$lib")")"
        local foreign
        # crew__ names are internal: hidden from the shared library.
        foreign=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | grep -vE '^crew_[a-z0-9]' || true)
        [ -z "$foreign" ] || fail "$name: libcrew.so exports symbols other than crew_*: $foreign"
        readelf -d "$lib" | grep -q "Library soname: \[libcrew.so.$version\]" \
            || fail "$name: SONAME is not libcrew.so.$version: $(readelf -d "$lib" | grep SONAME)"
    else
        lib=$(dirname "$pcfile")/../libcrew.a
        step "$name: global symbols of libcrew.a"
        # A static archive cannot hide symbols; they must at least stay in crew's namespace.
        # _.stapsdt.base is the weak, hidden anchor every <sys/sdt.h> user defines
        # for its USDT probes (runtime/probes.h); it is shared by design.
        local foreign
        foreign=$(nm --defined-only --extern-only "$lib" | awk 'NF == 3 { print $3 }' |
            grep -v -e '^crew_' -e '^_\.stapsdt\.base$' || true)
        [ -z "$foreign" ] || fail "$name: libcrew.a defines global symbols outside crew_*: $foreign"
    fi
}

check_variant shared ON ON
check_variant static OFF ON
# Without jemalloc the package must not ask consumers for it.
check_variant static-nojemalloc OFF OFF
if grep -q jemalloc "$work/static-nojemalloc/prefix/lib"*/pkgconfig/crew.pc; then
    fail "static-nojemalloc: crew.pc requires jemalloc"
fi

echo "package check: all passed"
