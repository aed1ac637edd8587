#!/usr/bin/env bash
# Stages what the runtime image needs from a build directory, and nothing else:
#
#   collect-runtime.sh BUILD_DIR OUT
#
# OUT/bin/   dtk, dtk-dispatch, dtk-worker, dtk-healthcheck
# OUT/lib/   libdtk, libdtk-fleet (soname link + file) and the plugins
#            libdtk-http.so, libdtk-postgres.so, libdtk-mysql.so
# OUT/share/dtk/runtime-libs.txt      every outside library of the ldd closure
#                                     and the Debian package that ships it
# OUT/share/dtk/runtime-packages.txt  those packages, one a line
#
# The closure is ldd's, run on every binary and library with OUT/lib first on
# LD_LIBRARY_PATH (so the staged copies are the ones resolved); a library
# ldd cannot find, or one no Debian package owns, is an error (exit 1).
# The Dockerfile's build stage and tests/py/test_deploy_files.py run it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: collect-runtime.sh BUILD_DIR OUT}
out=${2:?usage: collect-runtime.sh BUILD_DIR OUT}
build=$(cd "$build" && pwd)

mkdir -p "$out/bin" "$out/lib" "$out/share/dtk"
out=$(cd "$out" && pwd)
install -m 0755 "$build/cli/dtk" "$build/dispatcher/dtk-dispatch" "$build/worker/dtk-worker" "$out/bin/"
install -m 0755 "$here/healthcheck.sh" "$out/bin/dtk-healthcheck"
# The shared libraries: the real file and the soname link (not the .so dev link).
for lib in "$build/core/libdtk.so.0" "$build/core/fleet/libdtk-fleet.so.0"; do
	real=$(readlink -f "$lib")
	install -m 0755 "$real" "$out/lib/"
	ln -sf "$(basename "$real")" "$out/lib/$(basename "$lib")"
done
# The plugins, dlopen()ed by name next to libdtk.
for name in http postgres mysql; do
	install -m 0755 "$build/core/libdtk-$name.so" "$out/lib/"
done

# The dpkg database records paths as packages installed them; with merged
# /usr, ldd may report /lib/... for a file listed as /usr/lib/... (or the
# reverse), and a symlink for its target.
owner() {
	local p=$1 c real
	real=$(readlink -f "$p")
	for c in "$p" "/usr$p" "${p#/usr}" "$real" "/usr$real" "${real#/usr}"; do
		[ -n "$c" ] || continue
		if dpkg-query -S "$c" >/dev/null 2>&1; then
			dpkg-query -S "$c" 2>/dev/null | head -1 | cut -d: -f1
			return 0
		fi
	done
	return 1
}

missing=0
declare -A seen=()
: >"$out/share/dtk/runtime-libs.txt.tmp"
for f in "$out"/bin/dtk "$out"/bin/dtk-dispatch "$out"/bin/dtk-worker "$out"/lib/*.so*; do
	[ -L "$f" ] && continue
	ldd_out=$(LD_LIBRARY_PATH="$out/lib" ldd "$f") || { echo "collect-runtime: ldd $f failed" >&2; exit 1; }
	while read -r line; do
		case $line in
		*"not found"*)
			echo "collect-runtime: $(basename "$f"): ${line%% *} not found" >&2
			missing=1
			;;
		*"=> /"*)
			path=${line#*=> }
			path=${path%% (*}
			case $path in "$out"/lib/*) continue ;; esac
			[ -n "${seen[$path]:-}" ] && continue
			seen[$path]=1
			if pkg=$(owner "$path"); then
				printf '%s\t%s\n' "$path" "$pkg" >>"$out/share/dtk/runtime-libs.txt.tmp"
			else
				echo "collect-runtime: no Debian package owns $path" >&2
				missing=1
			fi
			;;
		esac
	done <<<"$ldd_out"
done
[ "$missing" -eq 0 ] || exit 1
sort -u "$out/share/dtk/runtime-libs.txt.tmp" >"$out/share/dtk/runtime-libs.txt"
rm -f "$out/share/dtk/runtime-libs.txt.tmp"
cut -f2 "$out/share/dtk/runtime-libs.txt" | sort -u >"$out/share/dtk/runtime-packages.txt"
echo "collect-runtime: $(wc -l <"$out/share/dtk/runtime-libs.txt") libraries from $(wc -l <"$out/share/dtk/runtime-packages.txt") packages" >&2
