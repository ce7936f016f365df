# shellcheck shell=bash
# Starts a throwaway three-master Redis Cluster for the redisstore tests.
# Source it, do not run it:
#
#	source .ci/services/redis-cluster.sh
#	(cd redisstore && go test ./...)
#	redis_cluster_stop
#
# It installs redis-server and redis-tools with apt-get when the binaries
# are missing, starts three redis-server daemons on 127.0.0.1 ports
# ${KVSESSION_REDIS_CLUSTER_PORT:-7001} and the two after it (loopback only,
# no persistence, everything in one temporary directory), joins them into a
# cluster with no replicas, waits until every node says cluster_state:ok,
# exports KVSESSION_TEST_REDIS_CLUSTER_ADDRS, and defines redis_cluster_stop.
#
# Sourcing it again is safe. A cluster that this shell already started is
# reused. One that an earlier run of this script left behind (found by its
# directory) is shut down and started afresh. An unrelated healthy cluster
# on those ports is reused and left running by redis_cluster_stop. Ports
# held by anything else make it try the next block of ten. If a step fails
# it prints why and returns non-zero (which ends a `set -e` shell).

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# _redis_cluster_cli runs redis-cli against 127.0.0.1:$1, giving up after a
# few seconds (redis-cli has no connect timeout of its own).
_redis_cluster_cli() {
	local port=$1
	shift
	timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

# _redis_cluster_port_busy reports whether anything accepts connections on
# 127.0.0.1:$1. Bash's /dev/tcp needs no nc.
_redis_cluster_port_busy() {
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# _redis_cluster_node_ok reports whether the Redis on port $1 is a cluster
# node that says cluster_state:ok.
_redis_cluster_node_ok() {
	# grep without -q reads all its input, so that under pipefail no
	# writer dies of SIGPIPE.
	_redis_cluster_cli "$1" cluster info | tr -d '\r' | grep -x 'cluster_state:ok' >/dev/null
}

# _redis_cluster_dir prints the working directory of the Redis on port $1.
_redis_cluster_dir() {
	_redis_cluster_cli "$1" config get dir | tr -d '\r' | sed -n 2p
}

# _redis_cluster_shutdown stops the Redis on port $1 without saving and
# waits (about 5 s at most) until the port is free.
_redis_cluster_shutdown() {
	local i
	_redis_cluster_cli "$1" shutdown nosave >/dev/null || true
	for ((i = 0; i < 50; i++)); do
		_redis_cluster_port_busy "$1" || return 0
		sleep 0.1
	done
	echo "redis-cluster.sh: the Redis on port $1 did not stop" >&2
	return 1
}

# _redis_cluster_ours prints the run directory of the cluster on ports $@ if
# this script started it (every node works in a subdirectory of one
# kvsession-redis-cluster.* directory), and fails otherwise.
_redis_cluster_ours() {
	local p d root=""
	for p in "$@"; do
		d="$(_redis_cluster_dir "$p")" || return 1
		case "$d" in
		*/kvsession-redis-cluster.*/"$p") ;;
		*) return 1 ;;
		esac
		d="${d%/*}"
		if [ -n "$root" ] && [ "$root" != "$d" ]; then
			return 1
		fi
		root=$d
	done
	printf '%s\n' "$root"
}

_redis_cluster_export() {
	local p addrs=""
	for p in "$@"; do
		addrs="${addrs:+$addrs,}127.0.0.1:$p"
	done
	export KVSESSION_TEST_REDIS_CLUSTER_ADDRS="$addrs"
	echo "redis-cluster.sh: Redis Cluster answers on $KVSESSION_TEST_REDIS_CLUSTER_ADDRS" >&2
}

# _redis_cluster_launch starts the nodes on ports $@ in REDIS_CLUSTER_DIR,
# creates the cluster and waits until it is ok.
_redis_cluster_launch() {
	local p i ok nodes=()
	for p in "$@"; do
		mkdir -p "$REDIS_CLUSTER_DIR/$p" || return 1
		if ! redis-server --port "$p" --bind 127.0.0.1 --daemonize yes \
			--dir "$REDIS_CLUSTER_DIR/$p" --pidfile "$REDIS_CLUSTER_DIR/$p/redis.pid" \
			--logfile "$REDIS_CLUSTER_DIR/$p/redis.log" \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
			--save "" --appendonly no; then
			echo "redis-cluster.sh: redis-server failed to start on 127.0.0.1:$p" >&2
			return 1
		fi
		nodes+=("127.0.0.1:$p")
	done
	for p in "$@"; do
		for ((i = 0; i < 100; i++)); do
			[ "$(_redis_cluster_cli "$p" ping | tr -d '\r')" = PONG ] && break
			sleep 0.1
		done
		if ((i == 100)); then
			echo "redis-cluster.sh: redis-server does not answer on 127.0.0.1:$p; its log:" >&2
			tail -n 20 "$REDIS_CLUSTER_DIR/$p/redis.log" >&2 || true
			return 1
		fi
	done
	if ! timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$REDIS_CLUSTER_DIR/create.log" 2>&1; then
		echo "redis-cluster.sh: redis-cli --cluster create failed:" >&2
		cat "$REDIS_CLUSTER_DIR/create.log" >&2
		return 1
	fi
	# Wait (about 30 s at most) until every node has agreed on the slots.
	for ((i = 0; i < 300; i++)); do
		ok=1
		for p in "$@"; do
			_redis_cluster_node_ok "$p" || {
				ok=0
				break
			}
		done
		((ok)) && return 0
		sleep 0.1
	done
	echo "redis-cluster.sh: the cluster did not reach cluster_state:ok; node 1 says:" >&2
	_redis_cluster_cli "$1" cluster info >&2 || true
	return 1
}

redis_cluster_start() {
	local base="${KVSESSION_REDIS_CLUSTER_PORT:-7001}" try p busy healthy old
	local ports=()
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
		echo "redis-cluster.sh: installing redis-server and redis-tools" >&2
		if ! ci_apt_install redis-server redis-tools; then
			echo "redis-cluster.sh: apt-get install redis-server redis-tools failed" >&2
			return 1
		fi
	fi

	for ((try = 0; try < 5; try++, base += 10)); do
		ports=("$base" "$((base + 1))" "$((base + 2))")
		busy=0
		healthy=1
		for p in "${ports[@]}"; do
			if _redis_cluster_port_busy "$p"; then
				busy=1
				_redis_cluster_node_ok "$p" || healthy=0
			else
				healthy=0
			fi
		done
		if ((!busy)); then
			for p in "${ports[@]}"; do
				if _redis_cluster_port_busy "$((p + 10000))"; then
					busy=1 # the cluster bus port is taken
				fi
			done
			if ((busy)); then
				echo "redis-cluster.sh: cluster bus ports $((base + 10000))-$((base + 10002)) are taken, trying the next block" >&2
				continue
			fi
			break
		fi
		if old="$(_redis_cluster_ours "${ports[@]}")"; then
			if ((healthy)) && [ "$old" = "${REDIS_CLUSTER_DIR:-}" ]; then
				_redis_cluster_export "${ports[@]}"
				return 0 # this shell's own cluster: reuse it
			fi
			echo "redis-cluster.sh: stopping a cluster left behind in $old" >&2
			for p in "${ports[@]}"; do
				_redis_cluster_shutdown "$p" || return 1
			done
			rm -rf "$old"
			break
		fi
		if ((healthy)); then
			echo "redis-cluster.sh: reusing the healthy cluster already on ports ${ports[0]}-${ports[2]}" >&2
			REDIS_CLUSTER_DIR=""
			_redis_cluster_export "${ports[@]}"
			return 0
		fi
		echo "redis-cluster.sh: ports ${ports[0]}-${ports[2]} are taken, trying the next block" >&2
	done
	if ((try == 5)); then
		echo "redis-cluster.sh: no free block of ports found" >&2
		return 1
	fi

	REDIS_CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kvsession-redis-cluster.XXXXXX")" || return 1
	REDIS_CLUSTER_PORTS="${ports[*]}"
	if ! _redis_cluster_launch "${ports[@]}"; then
		redis_cluster_stop
		return 1
	fi
	_redis_cluster_export "${ports[@]}"
}

# redis_cluster_stop stops the cluster that redis_cluster_start started, if
# any, and removes its directory. A reused cluster is left running.
redis_cluster_stop() {
	local p pid i
	if [ -n "${REDIS_CLUSTER_DIR:-}" ]; then
		for p in ${REDIS_CLUSTER_PORTS:-}; do
			pid="$(cat "$REDIS_CLUSTER_DIR/$p/redis.pid" 2>/dev/null || true)"
			_redis_cluster_cli "$p" shutdown nosave >/dev/null || true
			if [ -n "$pid" ]; then
				for ((i = 0; i < 50; i++)); do
					kill -0 "$pid" 2>/dev/null || break
					sleep 0.1
				done
				if ((i == 50)); then
					kill -9 "$pid" 2>/dev/null || true
				fi
			fi
		done
		rm -rf "$REDIS_CLUSTER_DIR"
	fi
	unset REDIS_CLUSTER_DIR REDIS_CLUSTER_PORTS KVSESSION_TEST_REDIS_CLUSTER_ADDRS
	return 0
}

redis_cluster_start
