#!/usr/bin/env bash
# The Dockerfile's build stage (and CI runs the same steps): installs the
# Debian build dependencies, builds a Release with -DDTK_TESTS=OFF, and stages
# the runtime files with collect-runtime.sh.
#
#   build-stage.sh SRC OUT
#
# SRC  the source tree (CMakeLists.txt, core, cli, dispatcher, worker, bench)
# OUT  the staged runtime tree: bin/, lib/, share/dtk/runtime-packages.txt
#
# DTK_DOCKER_STEPS picks steps (default "deps build stage"); CI runs
# "build stage" against its checkout. DTK_DOCKER_BUILD_DIR is the CMake
# build directory (default /tmp/dtk-build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: build-stage.sh SRC OUT}
out=${2:?usage: build-stage.sh SRC OUT}
steps=${DTK_DOCKER_STEPS:-deps build stage}
build=${DTK_DOCKER_BUILD_DIR:-/tmp/dtk-build}

# What the build needs, and nothing for the tests (cmocka, python, valgrind).
build_packages=(
	build-essential cmake ninja-build pkg-config
	libyaml-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev
	libpq-dev libmariadb-dev libhiredis-dev librdkafka-dev
)

for step in $steps; do
	case $step in
	deps)
		missing=()
		for p in "${build_packages[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
				missing+=("$p")
		done
		if [ ${#missing[@]} -gt 0 ]; then
			echo "build-stage: installing ${missing[*]}" >&2
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				"${missing[@]}" >&2
			rm -rf /var/lib/apt/lists/*
		fi
		;;
	build)
		# No build RPATH: in the image the libraries live in /usr/local/lib,
		# which the dynamic linker searches (ldconfig).
		cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTK_TESTS=OFF \
			-DCMAKE_SKIP_BUILD_RPATH=ON >&2
		ninja -C "$build" dtk-cli dtk-dispatch dtk-worker dtk-http dtk-postgres dtk-mysql >&2
		;;
	stage)
		"$here/collect-runtime.sh" "$build" "$out"
		;;
	*)
		echo "build-stage: unknown step '$step' (deps, build, stage)" >&2
		exit 2
		;;
	esac
done
