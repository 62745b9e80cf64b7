#!/usr/bin/env bash
# Cross-builds static edgegate binaries for Raspberry Pi boards into dist/:
#   edgegate-linux-arm64   Pi 3/4/5, Zero 2 W with a 64-bit OS
#   edgegate-linux-armv7   Pi 2/3/4 with a 32-bit OS
#   edgegate-linux-armv6   Pi 1, Zero, Zero W
# Usage: scripts/build-pi.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
mkdir -p "$out"
ver=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
flags=(-trimpath -ldflags="-s -w -X main.version=$ver")
build() { # GOARCH GOARM NAME
  echo "building $out/$3"
  CGO_ENABLED=0 GOOS=linux GOARCH=$1 GOARM=$2 go build "${flags[@]}" -o "$out/$3" ./cmd/edgegate
}
build arm64 "" edgegate-linux-arm64
build arm 7 edgegate-linux-armv7
build arm 6 edgegate-linux-armv6
ls -l "$out"/edgegate-linux-*
