# Sourced by install-deps.sh and install-services.sh:
#   apt_install_no_daemons PACKAGE...
# installs with apt-get while a policy-rc.d refuses every service start, so
# packages with daemons (prometheus for promtool; redis, postgresql,
# mariadb, clickhouse, alertmanager) do not start one on install: the tests
# start their own on free ports. The policy file is removed afterwards unless
# it was there before. Uses $sudo ("" as root).
apt_install_no_daemons() {
	local policy=/usr/sbin/policy-rc.d made=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		made=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2 ||
		rc=$?
	[ "$made" = 0 ] || $sudo rm -f "$policy"
	return "$rc"
}
