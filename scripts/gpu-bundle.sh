#!/usr/bin/env bash
# Builds on this (CPU) machine what scripts/gpu-check.sh runs on a GPU machine,
# and bundles it with the shared libraries it needs into .gpu-bundle/
# (git-ignored), small enough to travel with the working tree:
#
#   scripts/gpu-bundle.sh            build (sm_90, no -march=native), bundle, rehearse
#   scripts/gpu-bundle.sh --rehearse only the rehearsal of an existing bundle
#
# .gpu-bundle/
#   bin/        the CUDA programs and tests, and the CPU tools the check compares with (stripped)
#   lib/        every shared library they need that is neither glibc's nor CUDA's
#   data/       the reference CSV (from ../shared/data, which does not travel), when present
#   ptxas.log   registers, shared memory and spills of every kernel (-Xptxas -v)
#   MANIFEST    commit, date, compiler, sizes, and each binary's libraries on the GPU machine
#
# Not bundled, found on the GPU machine: glibc, the driver (libcuda), the CUDA
# toolkit's runtime and cuBLAS (/usr/local/cuda/lib64), NCCL (its Python wheel).
#
# The rehearsal proves the bundle complete: in a private mount namespace the
# system library folder is replaced by one holding glibc alone, and every
# binary must load and print its --help (or, for a test, skip for lack of a
# GPU) with LD_LIBRARY_PATH = the bundle and the CUDA toolkit. Where
# namespaces are not allowed it falls back to checking ldd's answer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bundle=$root/.gpu-bundle
build=$root/build-bundle
arch=${SEEMORE_GPU_ARCH:-90}
cuda_lib=${CUDA_LIB:-/usr/local/cuda/lib64}

cuda_bins=(seemore_cuda_tests seemore_nccl_tests seemore-microbench-cuda seemore-bench-cuda seemore-train-cuda
           seemore-caption-cuda)
cpu_bins=(seemore-bench seemore-train seemore-synth seemore-caption)

# glibc's own libraries: every Linux has them (the GPU machine's must be at
# least as new as this one's: Debian 12 has 2.36).
is_glibc() {
  case "$(basename "$1")" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|ld-linux-x86-64.so.*|linux-vdso.so.*) return 0 ;;
  esac
  return 1
}
# Found on the GPU machine: the driver, the toolkit's libraries, NCCL.
is_cuda() {
  case "$(basename "$1")" in
    libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libnccl.so*|libnvidia-*) return 0 ;;
  esac
  return 1
}

build_and_bundle() {
  "$root/scripts/install-deps.sh"
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
  # -Xptxas -v: the resource report of every kernel, kept in ptxas.log.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSEEMORE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DSEEMORE_NATIVE=OFF -DSEEMORE_MPI=OFF -DCMAKE_CUDA_FLAGS="-Xptxas=-v" "${launcher[@]}" >/dev/null
  local targets=()
  for t in "${cuda_bins[@]}" "${cpu_bins[@]}"; do targets+=(--target "$t"); done
  # The resource report is printed when a CUDA object is compiled (ccache
  # replays it for a cached one): make every CUDA object be compiled.
  find "$build" -name '*.cu.o' -delete 2>/dev/null || true
  cmake --build "$build" -j"$(nproc)" "${targets[@]}" 2>&1 | tee "$build/build.log" | grep -E "error|warning: " || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "gpu-bundle: build failed (see $build/build.log)" >&2; exit 1; }

  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/data"
  for t in "${cuda_bins[@]}" "${cpu_bins[@]}"; do
    f=$(find "$build" -type f -name "$t" -perm -u+x | head -1)
    [ -n "$f" ] || { echo "gpu-bundle: $t was not built" >&2; exit 1; }
    cp "$f" "$bundle/bin/"
    strip "$bundle/bin/$t"
  done
  # Every library ldd resolves that is neither glibc's nor CUDA's, copied as a file.
  for b in "$bundle"/bin/*; do
    LD_LIBRARY_PATH="$cuda_lib" ldd "$b" | awk '/=> \//{print $3}' | while read -r lib; do
      if is_glibc "$lib" || is_cuda "$lib"; then continue; fi
      [ -e "$bundle/lib/$(basename "$lib")" ] || cp -L "$lib" "$bundle/lib/"
    done
  done
  strip --strip-unneeded "$bundle"/lib/* 2>/dev/null || true
  grep -E "ptxas info *: (Compiling|Function properties|Used)|spill" "$build/build.log" | c++filt > "$bundle/ptxas.log" || true
  local csv=$root/../shared/data/seemore/inputs.csv
  if [ -f "$csv" ]; then cp "$csv" "$bundle/data/inputs.csv"; fi
  {
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
    echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}')"
    echo "nvcc: $(nvcc --version | tail -1); sm_$arch; host code without -march=native"
    echo "size: $(du -sh "$bundle" | cut -f1)"
  } > "$bundle/MANIFEST"
}

# The libraries of each binary as the GPU machine will see them: in the
# bundle, in CUDA's folders, or glibc's. Anything else fails the rehearsal.
check_ldd() {
  local bad=0
  for b in "$bundle"/bin/*; do
    while read -r line; do
      case "$line" in
        *"not found"*)
          if is_cuda "${line%% *}"; then continue; fi  # the driver: only on the GPU machine
          echo "  $(basename "$b"): $line"; bad=1 ;;
        *"=> /"*)
          local path=${line#*=> }
          path=${path%% (*}
          if [[ $path == "$bundle/lib/"* ]] || is_glibc "$path" || is_cuda "$path"; then continue; fi
          echo "  $(basename "$b"): resolved outside the bundle: $line"; bad=1 ;;
      esac
    done < <(env -i LD_LIBRARY_PATH="$bundle/lib:$cuda_lib" ldd "$b")
  done
  return $bad
}

rehearse() {
  [ -d "$bundle/bin" ] || { echo "gpu-bundle: no bundle; run scripts/gpu-bundle.sh first" >&2; exit 1; }
  echo "== rehearsal: $(du -sh "$bundle" | cut -f1) in $bundle"
  local size tree
  size=$(du -sb "$bundle" | cut -f1)
  tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  echo "   the bundle with the tree: $(( (size + tree) >> 20 )) MiB of the 64 MiB that travel"
  [ $((size + tree)) -lt $((60 << 20)) ] || { echo "gpu-bundle: too large to travel" >&2; exit 1; }
  echo "== ldd: every library in the bundle, in CUDA's folders, or glibc's"
  check_ldd || { echo "gpu-bundle: incomplete bundle" >&2; exit 1; }
  echo "   ok"
  echo "== --help of every binary with /usr/lib/x86_64-linux-gnu holding glibc alone"
  local libdir=/usr/lib/x86_64-linux-gnu stage
  stage=$(mktemp -d)
  local glibc=()
  for f in "$libdir"/libc.so.6 "$libdir"/libm.so.6 "$libdir"/libdl.so.2 "$libdir"/libpthread.so.0 "$libdir"/librt.so.1 \
           "$libdir"/ld-linux-x86-64.so.2; do
    [ -e "$f" ] && glibc+=("$f")
  done
  # Inside the namespace only bash builtins and the bundle's programs can run
  # once the folder is replaced, so everything else is prepared first.
  local script='
    mount -t tmpfs none "$STAGE" && cp -L $GLIBC "$STAGE"/ && mount --bind "$STAGE" /usr/lib/x86_64-linux-gnu || exit 90
    export LD_LIBRARY_PATH="$BUNDLE/lib:$CUDA_LIB"
    bad=0
    for b in "$BUNDLE"/bin/*; do
      out=$("$b" --help 2>&1 </dev/null); rc=$?
      case "$b" in
        *_tests) [ $rc = 77 ] && echo "   ok   ${b##*/}: skipped, no GPU (it loaded)" && continue ;;
      esac
      if [ $rc = 0 ]; then echo "   ok   ${b##*/} --help: ${out%%$'\''\n'\''*}"; else echo "   FAIL ${b##*/} (exit $rc): ${out:0:300}"; bad=1; fi
    done
    exit $bad'
  if unshare -m --propagation private true 2>/dev/null; then
    STAGE=$stage GLIBC="${glibc[*]}" BUNDLE=$bundle CUDA_LIB=$cuda_lib unshare -m --propagation private bash -c "$script"
    local rc=$?
    rmdir "$stage" 2>/dev/null || true
    [ $rc = 90 ] && { echo "gpu-bundle: could not replace the library folder" >&2; exit 1; }
    [ $rc = 0 ] || { echo "gpu-bundle: a binary does not run from the bundle" >&2; exit 1; }
  else
    echo "   (no mount namespaces here: ldd's answer above is the proof)"
  fi
  echo "== rehearsal passed"
}

if [ "${1:-}" != "--rehearse" ]; then build_and_bundle; fi
rehearse
