# shellcheck shell=bash
# Makes Chromium available to the demo's browser test. Source it, do not
# run it:
#
#	source .ci/services/chromium.sh
#	(cd examples/demo && go test ./...)
#
# It installs Debian's chromium package with apt-get when /usr/bin/chromium
# is missing (never a browser downloaded from elsewhere), checks that it
# starts, and exports:
#
#	KVSESSION_TEST_CHROMIUM  the browser, /usr/bin/chromium
#	KVSESSION_ARTIFACTS      where the test writes its screenshots: kept if
#	                         already set, else $PWD/.ci/artifacts; created
#
# If a step fails it prints why and returns non-zero (which ends a `set -e`
# shell).

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

chromium_setup() {
	local browser=/usr/bin/chromium
	if [ ! -x "$browser" ]; then
		echo "chromium.sh: installing chromium" >&2
		if ! ci_apt_install chromium; then
			echo "chromium.sh: apt-get install chromium failed" >&2
			return 1
		fi
	fi
	if [ ! -x "$browser" ]; then
		echo "chromium.sh: $browser is still missing after apt-get install chromium" >&2
		return 1
	fi
	local version
	if ! version="$(timeout 30 "$browser" --headless --no-sandbox --disable-gpu --version 2>/dev/null)"; then
		echo "chromium.sh: $browser does not start" >&2
		return 1
	fi
	export KVSESSION_TEST_CHROMIUM="$browser"
	export KVSESSION_ARTIFACTS="${KVSESSION_ARTIFACTS:-$PWD/.ci/artifacts}"
	if ! mkdir -p "$KVSESSION_ARTIFACTS"; then
		echo "chromium.sh: cannot create $KVSESSION_ARTIFACTS" >&2
		return 1
	fi
	echo "chromium.sh: $version at $KVSESSION_TEST_CHROMIUM; screenshots go to $KVSESSION_ARTIFACTS" >&2
}

chromium_setup
