#!/usr/bin/env bash
# provision.sh — turn a Debian bookworm VM into a peergate appliance; run
# by the Vagrantfile as root in the guest, with the repository at /vagrant.
#
#   PEERGATE_NIC_MACS  MAC addresses of the NICs given to the dataplane, in
#                      port order (fabric, vpc2); they are found by MAC
#                      because their PCI addresses depend on the provider
#   PEERGATE_DEB       package to install (default: newest dist/*.deb);
#                      without one, the package is built in the VM
#
# Steps: DPDK runtime, the peergate package, 1 GiB of 2 MiB hugepages,
# vfio-pci (no-IOMMU mode when the VM has no IOMMU), /etc/peergate filled in
# with the NICs' PCI addresses, the NICs bound to vfio-pci, the units
# enabled and started. Safe to run again (vagrant provision).
set -euo pipefail

src=${PEERGATE_SRC:-/vagrant}
state=/var/lib/peergate-vagrant
export DEBIAN_FRONTEND=noninteractive

log() { echo "provision: $*" >&2; }
die() { log "$*"; exit 1; }

read -r -a macs <<<"${PEERGATE_NIC_MACS:?set PEERGATE_NIC_MACS to the dataplane NICs MAC addresses}"
[ ${#macs[@]} -eq 2 ] || die "want 2 MAC addresses in PEERGATE_NIC_MACS, got ${#macs[@]}"

log "installing the DPDK runtime"
apt-get update -q
apt-get install -y -q --no-install-recommends dpdk librte-net-virtio23 librte-mempool-ring23 \
	pciutils kmod iproute2

# build_in_vm builds the package from the synced sources when the host did
# not (make package needs Go from go.dev: Debian bookworm's is too old for
# this module).
build_in_vm() {
	log "no package in $src/dist: building it in the VM"
	apt-get install -y -q --no-install-recommends libdpdk-dev pkg-config gcc make git ca-certificates curl
	local v
	v=$(awk '$1 == "go" { print $2 }' "$src/go.mod")
	if ! /usr/local/go/bin/go version 2>/dev/null | grep -q "go$v"; then
		log "installing Go $v from go.dev"
		rm -rf /usr/local/go
		curl -fsSL "https://go.dev/dl/go$v.linux-amd64.tar.gz" | tar -C /usr/local -xz
	fi
	PATH="/usr/local/go/bin:$PATH" make -C "$src" package
}

deb=${PEERGATE_DEB:-}
if [ -z "$deb" ]; then
	deb=$(ls -t "$src"/dist/peergate_*.deb 2>/dev/null | head -1 || true)
fi
if [ -z "$deb" ]; then
	build_in_vm
	deb=$(ls -t "$src"/dist/peergate_*.deb | head -1)
fi
log "installing $deb"
# confold: keep the peergate.env this script edited on a previous run.
apt-get install -y -q --no-install-recommends --reinstall \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb"

examples=/usr/share/doc/peergate/examples

log "reserving hugepages"
install -m 0644 "$examples/sysctl.d/80-peergate-hugepages.conf" /etc/sysctl.d/
sysctl -q --load=/etc/sysctl.d/80-peergate-hugepages.conf
grep -E '^(HugePages_Total|HugePages_Free|Hugepagesize)' /proc/meminfo >&2

# With no IOMMU (the usual VM), vfio-pci only works in no-IOMMU mode, and
# the dataplane needs the extra capabilities of the drop-in.
dropin=/etc/systemd/system/peergate-dataplane.service.d
if [ -z "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; then
	log "no IOMMU: vfio in no-IOMMU mode (test VMs only)"
	install -m 0644 "$examples/modprobe.d/peergate-vfio-noiommu.conf" /etc/modprobe.d/
	install -D -m 0644 "$examples/systemd/peergate-dataplane.service.d/vfio-noiommu.conf" "$dropin/vfio-noiommu.conf"
	modprobe vfio enable_unsafe_noiommu_mode=1
	[ -e /sys/module/vfio/parameters/enable_unsafe_noiommu_mode ] ||
		die "this kernel has no vfio no-IOMMU mode (CONFIG_VFIO_NOIOMMU): give the VM an IOMMU"
	echo 1 >/sys/module/vfio/parameters/enable_unsafe_noiommu_mode
else
	rm -f "$dropin/vfio-noiommu.conf" /etc/modprobe.d/peergate-vfio-noiommu.conf
fi
install -m 0644 "$examples/modules-load.d/peergate-vfio.conf" /etc/modules-load.d/
modprobe vfio-pci

# pci_of MAC prints the PCI address of the NIC with that MAC. Once bound to
# vfio-pci the NIC has no netdev any more, so the first run records it.
mkdir -p "$state"
pci_of() {
	local mac=${1,,} ifdir pci
	for ifdir in /sys/class/net/*; do
		if [ "$(cat "$ifdir/address")" = "$mac" ] && [ -e "$ifdir/device" ]; then
			pci=$(basename "$(readlink -f "$ifdir/device")")
			ip link set dev "$(basename "$ifdir")" down
			echo "$pci" >"$state/${mac//:/}"
			echo "$pci"
			return
		fi
	done
	[ -s "$state/${mac//:/}" ] || die "no NIC with MAC $mac (and none recorded in $state)"
	cat "$state/${mac//:/}"
}
pcis=()
for mac in "${macs[@]}"; do
	pci=$(pci_of "$mac")
	pcis+=("$pci")
done
log "dataplane NICs: ${pcis[*]}"

# One core for the system and the control plane (core 0), the rest to EAL:
# its main lcore and the workers.
cpus=$(nproc)
first=1
[ "$cpus" -ge 3 ] || first=0
workers=$((cpus - 1 - first))
[ "$workers" -ge 1 ] || workers=1
env=/etc/peergate/peergate.env
sed -i \
	-e "s|^PEERGATE_PCI=.*|PEERGATE_PCI=\"${pcis[*]}\"|" \
	-e "s|^PEERGATE_EAL=.*|PEERGATE_EAL=\"-l $first-$((cpus - 1)) -a ${pcis[0]} -a ${pcis[1]} --in-memory\"|" \
	-e "s|--workers [0-9]*|--workers $workers|" \
	"$env"
sed -e "s|0000:00:06.0|${pcis[0]}|; s|0000:00:07.0|${pcis[1]}|" \
	"$examples/manifests/gateway.yaml" >/etc/peergate/manifests/gateway.yaml
grep -E '^(PEERGATE_|DATAPLANE_|CONTROLPLANE_)' "$env" >&2

log "binding the NICs and starting peergate"
systemctl daemon-reload
systemctl enable peergate-devbind.service peergate-controlplane.service peergate-dataplane.service
systemctl restart peergate-devbind.service
dpdk-devbind.py --status-dev net >&2
systemctl restart peergate-controlplane.service peergate-dataplane.service
sleep 3
systemctl --no-pager --lines=20 status peergate-controlplane.service peergate-dataplane.service >&2 || true
log "done: vagrant ssh, then sudo journalctl -u peergate-dataplane -f"
