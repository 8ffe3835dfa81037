#!/usr/bin/env bash
# package.sh — build the peergate Debian package with dpkg-deb from the
# binaries of `make build` and the files in deploy/.
#
#   scripts/package.sh            -> dist/peergate_<version>_<arch>.deb
#
# Environment (all optional):
#   BIN_DIR             where controlplane, dataplane and gwctl are (bin)
#   DIST_DIR            where the .deb goes (dist)
#   PEERGATE_VERSION    package version; default from `git describe`:
#                       tag v1.2.3 -> 1.2.3, 3 commits after it ->
#                       1.2.3+3.g<sha>, no tag -> 0.1.0+git<sha>; a tree
#                       with uncommitted changes adds ".dirty"
#   PEERGATE_ARCH       Debian architecture (dpkg --print-architecture)
#   PEERGATE_MAINTAINER Maintainer field
#   PEERGATE_DEB_COMPRESS dpkg-deb compressor: xz (default), gzip, zstd, none
#
# Prints the path of the package it wrote on stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=${BIN_DIR:-$root/bin}
dist_dir=${DIST_DIR:-$root/dist}
deploy=$root/deploy
maintainer=${PEERGATE_MAINTAINER:-peergate developers <peergate@users.noreply.github.com>}

die() { echo "package: $*" >&2; exit 1; }

command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian's dpkg package)"
for b in controlplane dataplane gwctl; do
	[ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing: run 'make build' first"
done

# version turns `git describe` into a Debian upstream version. Debian
# versions must start with a digit and cannot contain '-' without a
# revision, hence the rewriting.
version() {
	if [ -n "${PEERGATE_VERSION:-}" ]; then
		echo "$PEERGATE_VERSION"
		return
	fi
	if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
		echo "0.1.0"
		return
	fi
	local dirty="" d
	if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
		dirty=".dirty"
	fi
	if d=$(git -C "$root" describe --tags --match 'v[0-9]*' 2>/dev/null); then
		d=${d#v}
		# 1.2.3-4-gabcdef0 -> 1.2.3+4.gabcdef0
		if [[ $d =~ ^(.*)-([0-9]+)-(g[0-9a-f]+)$ ]]; then
			d="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
		fi
		echo "${d//-/.}$dirty"
		return
	fi
	echo "0.1.0+git$(git -C "$root" describe --always)$dirty"
}

# shlib_packages lists the Debian packages that own the shared libraries
# the binaries link (libc6, DPDK's librte-* when built with the dpdk tag).
shlib_packages() {
	local f lib path pkg
	for f in "$@"; do
		objdump -p "$f" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }'
	done | sort -u | while read -r lib; do
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
		[ -n "$path" ] || die "shared library $lib of the binaries not found on this machine"
		pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null ||
			dpkg -S "/usr$path" 2>/dev/null) || die "no Debian package owns $path ($lib)"
		echo "${pkg%%:*}"
	done | sort -u
}

ver=$(version)
[[ $ver =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version $ver is not a valid Debian version"
arch=${PEERGATE_ARCH:-$(dpkg --print-architecture)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/peergate

inst() { # inst MODE SRC DEST
	install -D -m "$1" "$2" "$pkg$3"
}
inst 0755 "$bin_dir/controlplane" /usr/sbin/peergate-controlplane
inst 0755 "$bin_dir/dataplane" /usr/sbin/peergate-dataplane
inst 0755 "$bin_dir/gwctl" /usr/bin/gwctl
for u in peergate-controlplane peergate-dataplane peergate-devbind; do
	inst 0644 "$deploy/systemd/$u.service" "/lib/systemd/system/$u.service"
done
inst 0755 "$deploy/libexec/peergate-devbind" /usr/libexec/peergate/peergate-devbind
inst 0644 "$deploy/sysusers.d/peergate.conf" /usr/lib/sysusers.d/peergate.conf
inst 0644 "$deploy/udev/60-peergate-vfio.rules" /lib/udev/rules.d/60-peergate-vfio.rules
inst 0644 "$deploy/etc/peergate/peergate.env" /etc/peergate/peergate.env
install -d -m 0755 "$pkg/etc/peergate/manifests"
doc=/usr/share/doc/peergate
inst 0644 "$root/docs/deploy.md" "$doc/deploy.md"
inst 0644 "$deploy/etc/peergate/manifests/gateway.yaml" "$doc/examples/manifests/gateway.yaml"
inst 0644 "$deploy/sysctl.d/80-peergate-hugepages.conf" "$doc/examples/sysctl.d/80-peergate-hugepages.conf"
inst 0644 "$deploy/modules-load.d/peergate-vfio.conf" "$doc/examples/modules-load.d/peergate-vfio.conf"
inst 0644 "$deploy/modprobe.d/peergate-vfio-noiommu.conf" "$doc/examples/modprobe.d/peergate-vfio-noiommu.conf"
inst 0644 "$deploy/systemd/peergate-dataplane.service.d/vfio-noiommu.conf" \
	"$doc/examples/systemd/peergate-dataplane.service.d/vfio-noiommu.conf"

# Depends: the linked shared libraries, dpdk for dpdk-devbind.py, kmod for
# modprobe, systemd for sysusers. The ring mempool driver is a plugin DPDK
# loads at run time (no NEEDED entry), and every packet pool uses it.
deps=$(shlib_packages "$pkg/usr/sbin/peergate-controlplane" "$pkg/usr/sbin/peergate-dataplane" "$pkg/usr/bin/gwctl")
abi=$(grep -o '^librte-eal[0-9]*$' <<<"$deps" | sed 's/^librte-eal//' || true)
[ -n "$abi" ] && deps+=$'\n'"librte-mempool-ring$abi"
deps+=$'\n'"dpdk"$'\n'"kmod"$'\n'"systemd"
depends=$(sort -u <<<"$deps" | grep -v '^$' | paste -sd, | sed 's/,/, /g')
# The PMDs of the NICs are plugins too: recommend the ones the Vagrant VM
# and the vdev test setups use; a host adds its NIC's (librte-net-*).
recommends=""
[ -n "$abi" ] && recommends="Recommends: librte-net-virtio$abi, librte-net-af-packet$abi"

install -d -m 0755 "$pkg/DEBIAN"
cat >"$pkg/DEBIAN/control" <<EOF
Package: peergate
Version: $ver
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $depends${recommends:+
$recommends}
Section: net
Priority: optional
Homepage: https://github.com/peergate/peergate
Description: VPC peering gateway on DPDK
 peergate connects isolated tenant networks (VPCs) to each other and to
 external networks, with routing, stateless and stateful NAT and
 filtering, configured from declarative manifests.
 .
 This package holds the control plane and dataplane daemons, the gwctl
 CLI and their systemd units. The units are installed but not enabled;
 see /usr/share/doc/peergate/deploy.md.
EOF
echo /etc/peergate/peergate.env >"$pkg/DEBIAN/conffiles"

cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	systemd-sysusers peergate.conf
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	if command -v udevadm >/dev/null && [ -d /run/udev ]; then
		udevadm control --reload || true
	fi
fi
exit 0
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop peergate-dataplane.service peergate-controlplane.service || true
fi
exit 0
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

mkdir -p "$dist_dir"
out=$dist_dir/peergate_${ver}_${arch}.deb
dpkg-deb --root-owner-group -Z"${PEERGATE_DEB_COMPRESS:-xz}" --build "$pkg" "$out" >&2
echo "$out"
