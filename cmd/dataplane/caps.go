package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/peergate/peergate/internal/privdrop"
)

// dpdkCaps is what the dataplane keeps after start (docs/deploy.md, "User
// and capabilities", has the measurements behind it):
//
//	CAP_NET_RAW    packet sockets of net_af_packet (and net_pcap on an iface)
//	CAP_NET_ADMIN  MAC and promiscuous mode of net_af_packet, net_tap punt
//	               interfaces, and the ip/nft commands that set them up
//	CAP_IPC_LOCK   vfio pins the DMA-mapped hugepages beyond RLIMIT_MEMLOCK
//
// EAL needs no capability for hugepages with --in-memory, and vfio-pci with
// an IOMMU is reached through /dev/vfio file permissions.
var dpdkCaps = privdrop.Of(unix.CAP_NET_RAW, unix.CAP_NET_ADMIN, unix.CAP_IPC_LOCK)

// noIOMMUCaps are added when vfio runs in no-IOMMU mode: EAL then uses
// physical addresses, read from /proc/self/pagemap (CAP_SYS_ADMIN shows
// them; CAP_DAC_READ_SEARCH opens it when the process is not dumpable), and
// the kernel opens /dev/vfio/noiommu-N only for CAP_SYS_RAWIO.
var noIOMMUCaps = privdrop.Of(unix.CAP_SYS_RAWIO, unix.CAP_SYS_ADMIN, unix.CAP_DAC_READ_SEARCH)

// capsMarker tells the re-executed dataplane that its capabilities are
// already dropped.
const capsMarker = "PEERGATE_DATAPLANE_CAPS_DROPPED"

const noIOMMUParam = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

// keptCaps reads --keep-caps: "" is the default set (plus the no-IOMMU
// ones when noIOMMU), "all" keeps everything (all = true), a list replaces
// the default and "+list" adds to it.
func keptCaps(flag string, noIOMMU bool) (keep privdrop.Set, all bool, err error) {
	def := dpdkCaps
	if noIOMMU {
		def |= noIOMMUCaps
	}
	switch {
	case flag == "":
		return def, false, nil
	case flag == "all":
		return 0, true, nil
	case strings.HasPrefix(flag, "+"):
		more, err := privdrop.Parse(flag[1:])
		if err != nil {
			return 0, false, fmt.Errorf("--keep-caps %q: %w", flag, err)
		}
		return def | more, false, nil
	}
	keep, err = privdrop.Parse(flag)
	if err != nil {
		return 0, false, fmt.Errorf("--keep-caps %q: %w", flag, err)
	}
	return keep, false, nil
}

func vfioNoIOMMU() bool {
	b, err := os.ReadFile(noIOMMUParam)
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// restrictCaps drops every capability the dataplane does not keep, before
// EAL starts any thread, by re-executing the dataplane (privdrop.Reexec):
// on success the first call does not return, and the re-executed dataplane
// logs what it kept and goes on. A dataplane started with no more than the
// kept set (the systemd unit's non-root user) has nothing to drop.
func restrictCaps(log *slog.Logger, flag string) error {
	noIOMMU := vfioNoIOMMU()
	keep, all, err := keptCaps(flag, noIOMMU)
	if err != nil {
		return err
	}
	dropped := privdrop.Restricted(capsMarker)
	st, err := privdrop.Current()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if all {
		log.Info("capabilities: keeping all (--keep-caps all)", "effective", st.Effective, "bounding", st.Bounding)
		return nil
	}
	root := os.Geteuid() == 0
	beyond := st.Beyond(keep, root)
	switch {
	case dropped && beyond != 0:
		// Not re-executed again: that could loop. Say what is left: the
		// bounding set of a root started without cap_setpcap, which
		// no_new_privs keeps from being regained.
		log.Warn("capabilities: some could not be dropped", "left", beyond,
			"effective", st.Effective, "permitted", st.Permitted, "bounding", st.Bounding, "kept", keep)
		return nil
	case dropped:
		log.Info("capabilities dropped", "kept", st.Effective, "bounding", st.Bounding, "vfio_noiommu", noIOMMU)
		return nil
	case beyond == 0:
		log.Info("capabilities: nothing to drop", "uid", os.Geteuid(), "effective", st.Effective, "kept", keep)
		return nil
	}
	log.Debug("capabilities: dropping and re-executing", "drop", beyond, "keep", keep)
	return privdrop.Reexec(keep, capsMarker)
}
