# shellcheck shell=bash
# Starts a throwaway memcached for the memcachestore tests. Source it, do not
# run it:
#
#	source .ci/services/memcached.sh
#	(cd memcachestore && go test ./...)
#	memcached_stop
#
# It installs memcached with apt-get when the binary is missing, starts it on
# 127.0.0.1 port ${KVSESSION_MEMCACHED_PORT:-11311} (or the next free one of
# the ten after it, if something else holds that port), loopback only, no
# UDP, 64 MB; waits until it answers; exports KVSESSION_TEST_MEMCACHE_ADDR;
# and defines memcached_stop, which stops it through its pidfile. If a step
# fails it prints why and returns non-zero (which ends a `set -e` shell).

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# _memcached_version_ok reports whether something answers memcached's
# "version" command on 127.0.0.1:$1. Bash's /dev/tcp needs no nc.
_memcached_version_ok() {
	local reply
	reply="$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'version\r\n' >&3 && head -c 7 <&3" 2>/dev/null)" &&
		[ "$reply" = "VERSION" ]
}

# _memcached_port_busy reports whether anything accepts connections on
# 127.0.0.1:$1.
_memcached_port_busy() {
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

memcached_start() {
	local first="${KVSESSION_MEMCACHED_PORT:-11311}" port="" p i pid
	if ! command -v memcached >/dev/null 2>&1; then
		echo "memcached.sh: installing memcached" >&2
		if ! ci_apt_install memcached; then
			echo "memcached.sh: apt-get install memcached failed" >&2
			return 1
		fi
	fi
	for ((p = first; p <= first + 10; p++)); do
		if ! _memcached_port_busy "$p"; then
			port=$p
			break
		fi
		echo "memcached.sh: port $p is taken, trying the next" >&2
	done
	if [ -z "$port" ]; then
		echo "memcached.sh: no free port in $first-$((first + 10))" >&2
		return 1
	fi

	MEMCACHED_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kvsession-memcached.XXXXXX")" || return 1
	local args=(-d -l 127.0.0.1 -p "$port" -U 0 -m 64 -P "$MEMCACHED_DIR/memcached.pid")
	if [ "$(id -u)" -eq 0 ]; then
		args+=(-u root) # memcached refuses to run as root without -u
	fi
	if ! memcached "${args[@]}"; then
		echo "memcached.sh: memcached failed to start on 127.0.0.1:$port" >&2
		memcached_stop
		return 1
	fi

	# Wait (about 10 s at most) until our own daemon is alive and answers.
	for ((i = 0; i < 100; i++)); do
		pid="$(cat "$MEMCACHED_DIR/memcached.pid" 2>/dev/null || true)"
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && _memcached_version_ok "$port"; then
			export KVSESSION_TEST_MEMCACHE_ADDR="127.0.0.1:$port"
			echo "memcached.sh: memcached (pid $pid) answers on $KVSESSION_TEST_MEMCACHE_ADDR" >&2
			return 0
		fi
		sleep 0.1
	done
	echo "memcached.sh: memcached does not answer on 127.0.0.1:$port" >&2
	memcached_stop
	return 1
}

# memcached_stop stops the memcached that memcached_start started, if any.
memcached_stop() {
	local pid i
	if [ -n "${MEMCACHED_DIR:-}" ]; then
		pid="$(cat "$MEMCACHED_DIR/memcached.pid" 2>/dev/null || true)"
		if [ -n "$pid" ]; then
			kill "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		rm -rf "$MEMCACHED_DIR"
	fi
	unset MEMCACHED_DIR KVSESSION_TEST_MEMCACHE_ADDR
	return 0
}

memcached_start
