# shellcheck shell=bash
# ci_apt_install installs Debian packages quietly, without recommends,
# running apt-get update once per shell first. Sourced by the other service
# scripts; it returns non-zero if apt-get fails.
ci_apt_install() {
	if [ -z "${_KVSESSION_APT_UPDATED:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || return 1
		_KVSESSION_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
