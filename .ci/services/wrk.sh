# shellcheck shell=bash
# Installs wrk, the HTTP load generator of the end-to-end comparison in
# bench/ (TestWrk), and points the tests at it. Source it, do not run it:
#
#	source .ci/services/wrk.sh
#
# It installs Debian's wrk with apt-get when the binary is missing and
# exports KVSESSION_BENCH_WRK (the binary) and, unless already set,
# KVSESSION_BENCH_WRK_DURATION=1s: in CI the measurement only has to run,
# its numbers are not asserted. If a step fails it prints why and returns
# non-zero (which ends a `set -e` shell).

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

wrk_setup() {
	if ! command -v wrk >/dev/null 2>&1; then
		echo "wrk.sh: installing wrk" >&2
		if ! ci_apt_install wrk; then
			echo "wrk.sh: apt-get install wrk failed" >&2
			return 1
		fi
	fi
	KVSESSION_BENCH_WRK="$(command -v wrk)"
	export KVSESSION_BENCH_WRK
	export KVSESSION_BENCH_WRK_DURATION="${KVSESSION_BENCH_WRK_DURATION:-1s}"
	wrk --version 2>&1 | head -n 1 >&2 || true
}

wrk_setup
