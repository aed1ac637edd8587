# MariaDB (Debian mariadb-server): mariadb-install-db into the service dir
# once, then mariadbd in the foreground without reading /etc/mysql
# (--no-defaults), --user=root when root (it refuses root otherwise), a free
# port on 127.0.0.1, socket and pid file in the service dir, time zone UTC,
# durability relaxed. Grant tables are on: user dtk (password dtkpass, from
# '%', '127.0.0.1' and 'localhost') has every privilege, database dtk exists.
# Sourced by scripts/services.sh.

maria_user=()
[ "$(id -u)" -ne 0 ] || maria_user=(--user=root)

svc_start_mariadb() {
	local dir=$1 port sock data=$1/data
	sock=$(sock_dir "$dir")
	mkdir -p "$sock"
	echo "$sock/mariadb.sock" >"$dir/socket"
	if [ ! -d "$data/mysql" ]; then
		rm -rf "$data"
		mariadb-install-db --no-defaults "${maria_user[@]}" --datadir="$data" \
			--auth-root-authentication-method=normal --skip-test-db \
			>>"$dir/log/install-db.log" 2>&1 || {
			log "mariadb-install-db failed; see $dir/log/install-db.log"
			tail -n 20 "$dir/log/install-db.log" >&2
			return 1
		}
	fi
	port=$(pick_ports 1 "$(field "$dir" port)")
	echo "$port" >"$dir/port"
	spawn "$dir" "$dir/log/stdout.log" mariadbd --no-defaults "${maria_user[@]}" \
		--datadir="$data" --socket="$sock/mariadb.sock" --port="$port" \
		--bind-address=127.0.0.1 --pid-file="$dir/run/mariadbd.pid" \
		--log-error="$dir/log/mariadb.err" --default-time-zone=+00:00 \
		--skip-name-resolve --skip-log-bin --performance-schema=OFF \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
		--innodb-flush-log-at-trx-commit=0 --max-connections=200 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
	wait_ready mariadb "$dir" || return 1
	mariadb --no-defaults --socket="$sock/mariadb.sock" -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS dtk;
CREATE USER IF NOT EXISTS 'dtk'@'%' IDENTIFIED BY 'dtkpass';
CREATE USER IF NOT EXISTS 'dtk'@'127.0.0.1' IDENTIFIED BY 'dtkpass';
CREATE USER IF NOT EXISTS 'dtk'@'localhost' IDENTIFIED BY 'dtkpass';
GRANT ALL PRIVILEGES ON *.* TO 'dtk'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'dtk'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'dtk'@'localhost';
SQL
}

# mariadb-admin ping succeeds once the server answers, even before user dtk exists.
svc_ready_mariadb() {
	mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$(field "$1" port)" \
		-u dtk -pdtkpass --connect-timeout=2 ping >/dev/null 2>&1
}

svc_logs_mariadb() {
	echo "$1/log/mariadb.err"
	echo "$1/log/stdout.log"
}

svc_env_mariadb() {
	local port
	port=$(field "$1" port)
	echo "export DTK_MARIADB_PORT=$port"
	echo "export DTK_MARIADB_SOCKET='$(field "$1" socket)'"
	echo "export DTK_MYSQL_DSN=mysql://dtk:dtkpass@127.0.0.1:$port/dtk"
}
