# shellcheck shell=bash
# Makes sure the machine's shared servers answer on loopback and exports the
# test variables that point at them. Source it, do not run it.
#
#	Redis       127.0.0.1:6379  KVSESSION_TEST_REDIS_ADDR
#	PostgreSQL  127.0.0.1:5432  KVSESSION_TEST_POSTGRES_DSN (database test, trust auth)
#	MariaDB     127.0.0.1:3306  KVSESSION_TEST_MYSQL_DSN    (root, empty password, database test)
#
# Machines of this kind start these before a session; a stopped one is
# started with the same command the machine uses, a missing one installed
# from Debian's packages. The tests use their own key prefixes and tables
# and leave the servers as they found them.

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

_port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

_wait_port() {
	local i
	for ((i = 0; i < 60; i++)); do
		_port_open "$1" && return 0
		sleep 0.5
	done
	echo "base.sh: nothing answers on 127.0.0.1:$1 ($2)" >&2
	return 1
}

base_services_start() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		ci_apt_install redis-server redis-tools || return 1
	fi
	if ! _port_open 6379; then
		mkdir -p /var/lib/redis /var/log/redis
		redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
			--dir /var/lib/redis --logfile /var/log/redis/ci.log || return 1
	fi
	_wait_port 6379 Redis || return 1

	if ! _port_open 5432; then
		if ! command -v pg_ctlcluster >/dev/null; then
			echo "base.sh: PostgreSQL is not installed; this machine kind provides it" >&2
			return 1
		fi
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || return 1
	fi
	_wait_port 5432 PostgreSQL || return 1

	if ! _port_open 3306; then
		if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
			echo "base.sh: MariaDB is not installed; this machine kind provides it" >&2
			return 1
		fi
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || return 1
	fi
	_wait_port 3306 MariaDB || return 1

	export KVSESSION_TEST_REDIS_ADDR=127.0.0.1:6379
	export KVSESSION_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
	export KVSESSION_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/test'
}
