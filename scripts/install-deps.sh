#!/usr/bin/env bash
# Installs the Debian 12 packages seemore needs, only those that are missing.
# Idempotent; uses sudo when not root. Extra packages can be passed as arguments.
set -euo pipefail
pkgs=(build-essential cmake ccache libeigen3-dev libstb-dev nlohmann-json3-dev catch2 libcli11-dev
      libbenchmark-dev libpng-dev libjpeg-dev libgif-dev libwebp-dev libtiff-dev libopenmpi-dev openmpi-bin "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
