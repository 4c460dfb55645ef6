#!/usr/bin/env bash
# Installs what `localcluster --real-node` runs beside the kubelet it builds:
# containerd (with ctr and the runc v2 shim), runc, the CNI plugins (bridge,
# host-local, loopback, portmap under /usr/lib/cni), iptables and iproute2,
# all from Debian with apt, and only those that are missing. Nothing is
# started or configured: localcluster runs containerd itself, with its own
# config, in a namespace of its own.
#
# Usage: hack/install-node-deps.sh
#
# Quiet when everything is there. When something is missing and cannot be
# installed (not root, no apt-get), it prints one line saying what and
# exits 1; localcluster then says why the real node is unavailable.
set -euo pipefail

# need maps a file that must exist to the Debian package that provides it.
declare -A need=(
	[/usr/bin/containerd]=containerd
	[/usr/bin/ctr]=containerd
	[/usr/bin/containerd-shim-runc-v2]=containerd
	[/usr/sbin/runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins
	[/usr/lib/cni/host-local]=containernetworking-plugins
	[/usr/lib/cni/loopback]=containernetworking-plugins
	[/usr/lib/cni/portmap]=containernetworking-plugins
	[/usr/sbin/iptables]=iptables
	[/usr/sbin/ip]=iproute2
)

missing=()
for path in "${!need[@]}"; do
	if [[ ! -x "${path}" ]]; then
		pkg="${need[${path}]}"
		if [[ " ${missing[*]} " != *" ${pkg} "* ]]; then
			missing+=("${pkg}")
		fi
	fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "install-node-deps: cannot install ${missing[*]}: needs root and apt-get" >&2
	exit 1
fi
echo "install-node-deps: installing ${missing[*]}"
# Debian's containerd ships only a systemd unit: where systemd is not PID 1
# (CI, containers) nothing starts. Where it is, apt starts the host's own
# containerd, as for any install of the package; localcluster's containerd
# uses its own socket, root and state dirs, so the two do not meet.
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
# apt's progress and debconf's notes go to the log, shown only on failure.
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"${log}" 2>&1; then
	cat "${log}" >&2
	echo "install-node-deps: apt-get could not install ${missing[*]}" >&2
	exit 1
fi
