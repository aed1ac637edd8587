#!/usr/bin/env bash
# Configures and builds into build/ (or $1) with CMake and Ninja.
# Extra arguments are passed to cmake, e.g. -DDTK_SANITIZE=ON.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
cmake -S "$here" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=${DTK_BUILD_TYPE:-RelWithDebInfo} "$@" >&2
ninja -C "$dir" >&2
