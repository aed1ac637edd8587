# PostgreSQL 15 (Debian postgresql). initdb refuses root, so as root the
# cluster belongs to the `postgres` user, in directories it owns; pg_ctl
# starts it on a free port, 127.0.0.1 only, its unix socket in the service
# dir, timezone UTC, durability off (a throw-away test cluster). Role dtk
# (password dtkpass, CREATEDB) owns database dtk. The postmaster stops on
# SIGINT (fast shutdown: SIGTERM would wait for every client to leave).
# Sourced by scripts/services.sh.

pg_bin=/usr/lib/postgresql/15/bin

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Where the cluster lives: the service dir, or a directory under /tmp when
# the postgres user cannot reach the service dir (a home directory, say).
pg_base() {
	local dir=$1
	if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$dir" 2>/dev/null; then
		echo "$dir"
	else
		echo "/tmp/dtk-postgres-$(printf %s "$dir" | md5sum | cut -c1-12)"
	fi
}

svc_start_postgres() {
	local dir=$1 base port sock data
	base=$(pg_base "$dir")
	data=$base/data
	sock=$(sock_dir "$dir")
	[ "$base" = "$dir" ] || sock=$base/run
	mkdir -p "$base/log" "$sock"
	if [ "$(id -u)" -eq 0 ]; then
		install -d -o postgres -g postgres -m 700 "$data"
		chown postgres:postgres "$base/log" "$sock"
	else
		mkdir -p "$data" && chmod 700 "$data"
	fi
	[ "$base" = "$dir" ] || log "postgres: the postgres user cannot reach $dir; cluster in $base"
	echo "$base" >"$dir/base"
	echo "$sock" >"$dir/socket_dir"
	echo "$data" >"$dir/match"
	if [ ! -f "$data/PG_VERSION" ]; then
		as_pg "$pg_bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale --no-sync \
			--auth-local=trust --auth-host=scram-sha-256 >>"$base/log/initdb.log" 2>&1 || {
			log "initdb failed; see $base/log/initdb.log"
			tail -n 20 "$base/log/initdb.log" >&2
			return 1
		}
		cat >>"$data/postgresql.conf" <<CONF

# Added by scripts/services.sh (port and socket dir are given at start).
listen_addresses = '127.0.0.1'
timezone = 'UTC'
log_timezone = 'UTC'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
	fi
	port=$(pick_ports 1 "$(field "$dir" port)")
	echo "$port" >"$dir/port"
	as_pg "$pg_bin/pg_ctl" -D "$data" -l "$base/log/postgres.log" -w -t "$timeout" \
		-o "-p $port -k $sock" start >>"$base/log/pg_ctl.log" 2>&1 9>&- || {
		log "pg_ctl start failed; see $base/log/postgres.log"
		tail -n 20 "$base/log/postgres.log" >&2
		return 1
	}
	head -n 1 "$data/postmaster.pid" >"$dir/pid"
	wait_ready postgres "$dir" || return 1
	local psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres)
	"${psql[@]}" -c "DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dtk') THEN
			CREATE ROLE dtk LOGIN CREATEDB PASSWORD 'dtkpass';
		END IF; END \$\$;" >&2
	if [ -z "$("${psql[@]}" -Atc "SELECT 1 FROM pg_database WHERE datname = 'dtk'")" ]; then
		"${psql[@]}" -c "CREATE DATABASE dtk OWNER dtk" >&2
	fi
}

svc_ready_postgres() {
	"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$(field "$1" port)" -t 2
}

svc_stop_signal_postgres() { echo INT; }

svc_logs_postgres() {
	local base
	base=$(field "$1" base)
	echo "${base:-$1}/log/postgres.log"
}

svc_env_postgres() {
	local port
	port=$(field "$1" port)
	echo "export DTK_POSTGRES_PORT=$port"
	echo "export DTK_POSTGRES_HOST=127.0.0.1"
	echo "export DTK_POSTGRES_SOCKET_DIR='$(field "$1" socket_dir)'"
	echo "export DTK_POSTGRES_DSN=postgresql://dtk:dtkpass@127.0.0.1:$port/dtk"
}
