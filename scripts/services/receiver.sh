# The HTTP receiver (scripts/receiver.py): alert webhooks and scripted HTTP
# data sources. Sourced by scripts/services.sh.

svc_start_receiver() {
	local dir=$1 port
	port=$(pick_ports 1 "$(field "$dir" port)")
	echo "$port" >"$dir/port"
	spawn "$dir" "$dir/log/receiver.log" python3 "$here/scripts/receiver.py" \
		--host 127.0.0.1 --port "$port" --log "$dir/requests.jsonl"
	wait_ready receiver "$dir"
}

svc_ready_receiver() {
	http_ok "http://127.0.0.1:$(field "$1" port)/_dtk/health"
}

svc_logs_receiver() { echo "$1/log/receiver.log"; }

svc_env_receiver() {
	local port
	port=$(field "$1" port)
	echo "export DTK_RECEIVER_PORT=$port"
	echo "export DTK_RECEIVER_URL=http://127.0.0.1:$port"
	echo "export DTK_RECEIVER_LOG='$1/requests.jsonl'"
}
