# Sourced by scripts/deps.sh and scripts/deps-package.sh: installs the
# Debian packages of a list that are not installed yet. Quiet when all
# are; as a user other than root, names the missing ones and fails.
#
#   deps_install NAME TARGET PACKAGE...
#
# NAME prefixes the messages; TARGET is the make target to run as root.
deps_install() {
	local name=$1 target=$2 p missing=()

	shift 2
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	if [ "$(id -u)" -ne 0 ]; then
		echo "$name: missing packages: ${missing[*]}; run 'make $target' as root" >&2
		return 1
	fi
	echo "$name: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
