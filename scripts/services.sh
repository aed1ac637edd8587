#!/usr/bin/env bash
# Local services for the integration tests and for developers, each on a free
# loopback port, each stopped by the PID this script recorded:
#
#   scripts/services.sh start|stop|status|env [NAME...]
#
# NAME is one of receiver, clickhouse, postgres, mariadb, alertmanager, redis,
# kafka; none means all of them. State lives in ${DTK_SERVICES_DIR:-<repo>/build/services}/NAME/
# (data, logs, pid, port). `start` does nothing for a service whose recorded
# PID is alive and answers; `env` prints export lines for the running ones:
#
#   eval "$(scripts/services.sh env)"
#
# Only processes whose PID this script recorded, and whose command line names
# the service's own directory, are ever signalled. Progress goes to stderr.
# docs/services.md describes each service and its quirks.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${DTK_SERVICES_DIR:-$here/build/services}
timeout=${DTK_SERVICES_TIMEOUT:-60}
all=(receiver clickhouse postgres mariadb alertmanager redis kafka)

log() { echo "services: $*" >&2; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# pick_ports N [PREVIOUS...]: N distinct free loopback ports, one a line. The
# previous ports are kept when all of them are still free, so a restarted
# service usually comes back where it was.
pick_ports() {
	python3 - "$@" <<'EOF'
import socket, sys
n, prev = int(sys.argv[1]), [int(p) for p in sys.argv[2:] if p.isdigit()]
def grab(port):
    s = socket.socket()
    # As the servers themselves do: a port left in TIME_WAIT is free to them.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s
held = [grab(p) for p in prev] if len(prev) == n else []
if not held or None in held:
    for s in held:
        if s:
            s.close()
    held = [grab(0) for _ in range(n)]
print("\n".join(str(s.getsockname()[1]) for s in held))
for s in held:
    s.close()
EOF
}

# The recorded value of FILE in service dir DIR, or nothing.
field() { [ -f "$1/$2" ] && cat "$1/$2" || true; }

# pid_alive DIR: the recorded PID runs, and its command line names the
# service (the `match` file, the service dir by default): a PID reused by
# another program, or anything started by hand, is never ours.
pid_alive() {
	local dir=$1 pid match
	pid=$(field "$dir" pid)
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	match=$(field "$dir" match)
	[ -n "$match" ] || match=$dir
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$match"
}

# spawn DIR LOG CMD...: runs CMD in a session of its own (no terminal's
# signals reach it) and records its PID. The shell that writes the PID execs
# CMD, so the PID is the service's own whether or not setsid had to fork (it
# does when its caller leads a process group, as under ctest).
spawn() {
	local dir=$1 logf=$2 i
	shift 2
	rm -f "$dir/pid"
	setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$dir/pid" "$@" \
		>>"$logf" 2>&1 </dev/null 9>&- &
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/pid" ] && return 0
		sleep 0.05
	done
	log "no pid from $1 after 5s"
	return 1
}

http_ok() { curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null; }

# A directory for unix sockets: DIR/run, or a short one under /tmp when the
# path would pass the 107-byte limit of a socket address.
sock_dir() {
	local dir=$1
	if [ ${#dir} -lt 70 ]; then
		echo "$dir/run"
	else
		echo "/tmp/dtk-sock-$(printf %s "$dir" | md5sum | cut -c1-12)"
	fi
}

for f in "$here"/scripts/services/*.sh; do
	# shellcheck source=/dev/null
	. "$f"
done

# wait_ready NAME DIR: until the service answers; fails early if it died.
wait_ready() {
	local name=$1 dir=$2 deadline
	deadline=$(($(date +%s) + timeout))
	while ! "svc_ready_$name" "$dir"; do
		if ! pid_alive "$dir"; then
			log "$name exited while starting; last log lines:"
			"svc_logs_$name" "$dir" | xargs -r tail -n 20 >&2 || true
			return 1
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			log "$name did not answer within ${timeout}s; see $("svc_logs_$name" "$dir" | head -1)"
			return 1
		fi
		sleep 0.1
	done
}

# lock DIR: one start or stop of a service at a time, until this (sub)shell
# exits; the services themselves never inherit the lock's descriptor.
lock() {
	exec 9>"$1/.lock"
	flock -w "$timeout" 9 || {
		log "another services.sh holds $1/.lock"
		return 1
	}
}

start_one() {
	local name=$1 dir=$root/$1 t0
	t0=$(now)
	mkdir -p "$dir/log" "$dir/run"
	lock "$dir" || return 1
	if pid_alive "$dir"; then
		if wait_ready "$name" "$dir"; then
			log "$name already running (pid $(field "$dir" pid), port $(field "$dir" port))"
			return 0
		fi
		log "$name (pid $(field "$dir" pid)) does not answer; restarting it"
		locked=1 stop_one "$name"
	fi
	rm -f "$dir/pid"
	log "starting $name in $dir"
	"svc_start_$name" "$dir" || {
		log "$name failed to start; logs: $("svc_logs_$name" "$dir" | tr '\n' ' ')"
		return 1
	}
	log "$name up: pid $(field "$dir" pid), port $(field "$dir" port), $(since "$t0")s"
}

stop_one() {
	local name=$1 dir=$root/$1 pid sig=TERM i
	[ -d "$dir" ] || return 0
	[ -n "${locked:-}" ] || lock "$dir" || return 1
	pid=$(field "$dir" pid)
	if ! pid_alive "$dir"; then
		[ -z "$pid" ] || log "$name: recorded pid $pid is not running; forgetting it"
		rm -f "$dir/pid"
		return 0
	fi
	if declare -F "svc_stop_signal_$name" >/dev/null; then
		sig=$("svc_stop_signal_$name")
	fi
	log "stopping $name (pid $pid, SIG$sig)"
	kill -s "$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) still running after 30s; sending SIGKILL"
		kill -s KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) survived SIGKILL"
		return 1
	fi
	rm -f "$dir/pid"
}

is_up() { pid_alive "$root/$1" && "svc_ready_$1" "$root/$1"; }

status_one() {
	local name=$1 dir=$root/$1 state=down pid port
	pid=$(field "$dir" pid)
	port=$(field "$dir" port)
	is_up "$name" && state=up
	[ "$state" = up ] || pid_alive "$dir" || pid=""
	printf '%-13s pid=%-8s port=%-6s %s\n' "$name" "${pid:--}" "${port:--}" "$state"
}

env_one() {
	if is_up "$1"; then
		"svc_env_$1" "$root/$1"
	else
		log "$1 is not running; no variables for it"
	fi
}

cmd=${1:-}
[ $# -eq 0 ] || shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
for n in "${names[@]}"; do
	case " ${all[*]} " in
	*" $n "*) ;;
	*)
		echo "services.sh: unknown service '$n' (one of: ${all[*]})" >&2
		exit 2
		;;
	esac
done

case "$cmd" in
start)
	t0=$(now)
	mkdir -p "$root"
	# The receiver first: Alertmanager's webhook points at it. The others
	# start side by side.
	rc=0
	case " ${names[*]} " in *" receiver "*) (start_one receiver) || rc=1 ;; esac
	pids=()
	for n in "${names[@]}"; do
		[ "$n" = receiver ] && continue
		start_one "$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	log "start done in $(since "$t0")s"
	exit $rc
	;;
stop)
	rc=0
	pids=()
	for n in "${names[@]}"; do
		stop_one "$n" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	exit $rc
	;;
status)
	# Exit status 3 when any of them is down, as LSB init scripts do.
	rc=0
	for n in "${names[@]}"; do
		line=$(status_one "$n")
		echo "$line"
		case "$line" in *" down") rc=3 ;; esac
	done
	exit $rc
	;;
env)
	echo "export DTK_SERVICES_DIR='$root'"
	for n in "${names[@]}"; do env_one "$n"; done
	;;
*)
	echo "usage: scripts/services.sh start|stop|status|env [${all[*]// /|}]..." >&2
	exit 2
	;;
esac
