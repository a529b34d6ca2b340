#!/usr/bin/env bash
# Sets up the PyTorch users run, from PyPI, in a virtual environment outside
# the repository, for benchmarks/side_by_side.py (never needed by the build,
# the tests or CI):
#
#   scripts/get-torch.sh [DIR]          (default: ~/.cache/seemore/torch-venv)
#   DIR/bin/python benchmarks/side_by_side.py --compile --blas ...
#
# SEEMORE_TORCH_VERSION pins a version (default: the newest on PyPI). The
# Linux wheel on PyPI is the CUDA build with MKL and oneDNN inside; its CUDA
# libraries are about 3 GB more of download, unused on a CPU. torch.compile
# needs a C++ compiler (g++ from scripts/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/seemore/torch-venv}
case "$(cd "$(dirname "$dir")" 2>/dev/null && pwd)/" in
  "$root"/*) echo "get-torch.sh: put the environment outside the repository, not in $dir" >&2; exit 1 ;;
esac
spec="torch${SEEMORE_TORCH_VERSION:+==$SEEMORE_TORCH_VERSION}"
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  "$root/scripts/install-deps.sh" python3-venv
fi
mkdir -p "$(dirname "$dir")"
[ -x "$dir/bin/python" ] || python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --upgrade pip
"$dir/bin/python" -m pip install --quiet "$spec" numpy
"$dir/bin/python" - <<'PY'
import torch
print(f"PyTorch {torch.__version__} ({torch.__config__.show().splitlines()[1].strip()})")
print("CPU capability:", torch.backends.cpu.get_cpu_capability())
PY
echo "to compare: $dir/bin/python $root/benchmarks/side_by_side.py --compile"
