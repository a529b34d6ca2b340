#!/usr/bin/env bash
# scripts/gemm-ab.sh [REV] [-- ARGS]: the float GEMM of git revision REV
# (default HEAD) against the working tree's, call against call in one
# process (benchmarks/gemm_ab/main.cpp says why). ARGS go to the program
# (--reps N, --allow-different, --big-only). OMP_NUM_THREADS and SEEMORE_CPU apply as
# usual, e.g. SEEMORE_CPU=avx2 to time the AVX2 forms.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rev=HEAD
if [[ $# -gt 0 && $1 != -- ]]; then rev=$1; shift; fi
[[ $# -gt 0 && $1 == -- ]] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a"
git -C "$root" archive "$rev" include | tar -x -C "$work/a"
eigen=$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)
flags=(-O2 -march=native -fopenmp -std=c++17 $eigen)
src=$root/benchmarks/gemm_ab
g++ "${flags[@]}" -I"$work/a/include" -Dseemore=seemore_side_a -DSIDE=side_a -c "$src/side.cpp" -o "$work/a.o" &
g++ "${flags[@]}" -I"$root/include" -Dseemore=seemore_side_b -DSIDE=side_b -c "$src/side.cpp" -o "$work/b.o" &
g++ "${flags[@]}" -c "$src/main.cpp" -o "$work/main.o"
wait
g++ -fopenmp "$work/main.o" "$work/a.o" "$work/b.o" -o "$work/gemm-ab"
echo "A: $rev ($(git -C "$root" rev-parse --short "$rev")), B: the working tree; OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, SEEMORE_CPU=${SEEMORE_CPU:-unset}"
"$work/gemm-ab" "$@"
