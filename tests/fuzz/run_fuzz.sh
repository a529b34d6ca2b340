#!/usr/bin/env bash
# run_fuzz.sh HARNESS SECONDS WORKDIR SEEDDIR [REGRESSIONDIR]
# Replays every regression input (each must pass), then fuzzes for SECONDS
# from the seeds, keeping new inputs in WORKDIR. Exits non-zero on a finding;
# the crashing input is left in WORKDIR/artifacts/.
set -euo pipefail
harness=$1 seconds=$2 work=$3 seeds=$4 regressions=${5:-}
mkdir -p "$work/corpus" "$work/artifacts"
common=(-rss_limit_mb=2048 -timeout=20 -artifact_prefix="$work/artifacts/")
# A token dictionary beside the harness's sources, by input kind.
here=$(dirname "$0")
case $(basename "$harness") in
  fuzz_image) dict=$here/image.dict ;;
  fuzz_csv) dict=$here/csv.dict ;;
  fuzz_torch) dict=$here/torch.dict ;;
  *) dict=$here/json.dict ;;
esac
if [[ -n "$regressions" && -d "$regressions" ]]; then
  mapfile -t files < <(find "$regressions" -type f ! -name '*.md' | sort)
  if ((${#files[@]})); then
    echo "replaying ${#files[@]} regression inputs from $regressions"
    "$harness" "${common[@]}" "${files[@]}"
  fi
fi
"$harness" "${common[@]}" -dict="$dict" -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" "$seeds"
