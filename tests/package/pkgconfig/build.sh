#!/bin/bash
# The pkg-config consumer: build.sh OUTPUT [--static], with PKG_CONFIG_PATH
# pointing at <prefix>/lib/pkgconfig. --static adds crew's private
# dependencies, which a static libcrew.a needs.
set -euo pipefail
out=$1
shift
"${CC:-cc}" -o "$out" "$(dirname "$0")/../app.c" \
    ${CFLAGS:-} $(pkg-config --cflags crew) $(pkg-config "$@" --libs crew)
