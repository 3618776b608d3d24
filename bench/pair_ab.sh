#!/usr/bin/env bash
# Paired A/B comparison of two benchmark binaries on a noisy machine.
#
#   bench/pair_ab.sh [-n ROUNDS] A B WORKLOAD [SIZES...]
#
# A and B are crew-bench builds (or a peer binary such as tokio-peers: any
# program printing the peers' one-line format). Each round runs A, then B,
# back to back, so both see the same machine state; the report is the median
# of the per-round ratios B/A of the primary metric, with each side's median.
# On shared 2-core VMs run-to-run noise is +-20 %, larger than most changes:
# medians of separate batches mislead, adjacent pairs do not. A build's
# binary loads its own tree's libcrew (RUNPATH), so A and B must come from
# two build trees (e.g. a git worktree of the base commit).
#
# Note a ratio of a throughput metric (_per_s) means B faster when > 1; of a
# time metric (wall_ms) it means B slower.
set -euo pipefail

rounds=9
if [[ ${1:-} == -n ]]; then
    rounds=$2
    shift 2
fi
if [[ $# -lt 3 || ! $rounds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [-n ROUNDS] A B WORKLOAD [SIZES...]" >&2
    exit 2
fi
a=$1 b=$2
shift 2

# The primary metric: the first key=value pair after "<workload> <peer>".
primary() {
    local line
    line=$("$@") || { echo "$0: '$*' failed" >&2; exit 1; }
    awk '{ split($3, kv, "="); print kv[2]; exit }' <<<"$line"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ratios=() va=() vb=()
for ((i = 0; i < rounds; i++)); do
    x=$(primary "$a" "$@")
    y=$(primary "$b" "$@")
    va+=("$x") vb+=("$y")
    ratios+=("$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.4f", y / x }')")
done

echo "$* rounds=$rounds"
echo "A median $(printf '%s\n' "${va[@]}" | median)  ($a)"
echo "B median $(printf '%s\n' "${vb[@]}" | median)  ($b)"
echo "B/A median ratio $(printf '%s\n' "${ratios[@]}" | median)  rounds: ${ratios[*]}"
