#!/bin/bash
# Checks that libcrew carries every USDT probe runtime/probes.h documents, in
# provider "crew" (usage: check_probes.sh path/to/libcrew.so).
set -euo pipefail
lib=${1:?usage: check_probes.sh libcrew.so}
notes=$(readelf -n "$lib")
missing=0
for probe in task_spawn task_steal task_wake worker_park worker_unpark; do
    if ! grep -A2 'stapsdt' <<<"$notes" | grep -q "Name: $probe\$"; then
        echo "check_probes: $lib has no USDT probe crew:$probe" >&2
        missing=1
    fi
done
if grep -A1 'stapsdt' <<<"$notes" | grep 'Provider:' | grep -vq 'Provider: crew$'; then
    echo "check_probes: a probe of $lib is not in provider crew" >&2
    missing=1
fi
[ "$missing" = 0 ] && echo "check_probes: OK"
exit "$missing"
