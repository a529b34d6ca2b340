#!/usr/bin/env bash
# Measures the CPU training step against PyTorch on this machine, as
# docs/benchmarks.md records it, in one command from a fresh checkout:
#
#   scripts/cpu-targets.sh [OUT]          (default: build-cpu-targets/)
#
# 1. PyTorch from PyPI in a virtual environment outside the repository
#    (scripts/get-torch.sh; SEEMORE_TORCH_VENV picks the directory) and MKL
#    for the BLAS comparison (scripts/get-mkl.sh; SEEMORE_CPU_TARGETS_MKL=0
#    leaves it out);
# 2. seemore-bench and seemore-microbench built twice: with -march=native
#    (the repository's default) and without (as an installed package's user
#    builds), Release, no tests;
# 3. the machine's limits as seemore-microbench measures them (FMA peak per
#    form, one thread and all, memory bandwidth) into OUT/limits.txt;
# 4. benchmarks/side_by_side.py at the processor's best form, and on a
#    processor with AVX-512 a second run with seemore and eager PyTorch held
#    to AVX2, each into OUT/<form>.txt and OUT/<form>.json.
#
# Not part of the build, the tests or CI: it downloads about 4 GB (PyTorch's
# wheel and MKL) and runs for 10–20 minutes on 2 cores. Nothing else should
# run on the machine meanwhile: the figures are timings.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-cpu-targets}
venv=${SEEMORE_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/seemore/torch-venv}
threads=${SEEMORE_CPU_TARGETS_THREADS:-$(nproc)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

"$root/scripts/install-deps.sh"
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch" 2>/dev/null || "$root/scripts/get-torch.sh" "$venv"
blas=()
if [ "${SEEMORE_CPU_TARGETS_MKL:-1}" != 0 ]; then
  [ -e "$root/.mkl/lib/libmkl_rt.so.2" ] || "$root/scripts/get-mkl.sh"
  blas=(--blas "$root/.mkl/lib/libmkl_rt.so.2")
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
build() {  # build DIR [cmake options]: the two benchmarks, Release, no tests
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSEEMORE_BUILD_TESTS=OFF -DSEEMORE_CUDA=OFF \
    "${launcher[@]}" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" --target seemore-bench seemore-microbench
}
echo "cpu-targets: building (-march=native, then without) into $out/native and $out/portable"
build "$out/native"
build "$out/portable" -DSEEMORE_NATIVE=OFF
bench=$out/native/benchmarks/seemore-bench
portable=$out/portable/benchmarks/seemore-bench

{
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  for t in 1 "$threads"; do
    # A filter that matches no benchmark: the start-up lines (the limits) only.
    OMP_NUM_THREADS=$t "$out/native/benchmarks/seemore-microbench" --benchmark_filter='^$' 2>&1 | grep -v '^Failed to match' || true
  done
} | tee "$out/limits.txt"

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
forms=(best)
case " $flags " in *" avx512f "*) forms+=(avx2) ;; esac
py=$venv/bin/python
for form in "${forms[@]}"; do
  args=(--threads "$threads" --steps 10 --bench "$bench" --portable-bench "$portable" "${blas[@]}"
        --json "$out/$form.json")
  if [ "$form" = best ]; then
    args+=(--rounds 5 --compile)
  else
    # PyTorch 2.15's compiled model crashes under ATEN_CPU_CAPABILITY=avx2.
    args+=(--rounds 3 --cpu-cap avx2 --torch-avx2)
  fi
  echo "cpu-targets: side_by_side.py ${args[*]}"
  (cd "$root" && "$py" benchmarks/side_by_side.py "${args[@]}") 2>&1 | grep -v -e 'Warning' -e '^W[0-9]' | tee "$out/$form.txt"
done
echo "cpu-targets: results in $out (limits.txt, ${forms[*]/%/.txt})"
