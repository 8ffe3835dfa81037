//go:build cgo && dpdk

package dpdk

/*
#cgo pkg-config: libdpdk
#include "pg_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offsets of struct rte_mbuf fields, from the C compiler.
const (
	offBufAddr = uintptr(C.PG_MBUF_BUF_ADDR)
	offDataOff = uintptr(C.PG_MBUF_DATA_OFF)
	offNbSegs  = uintptr(C.PG_MBUF_NB_SEGS)
	offPort    = uintptr(C.PG_MBUF_PORT)
	offPktLen  = uintptr(C.PG_MBUF_PKT_LEN)
	offDataLen = uintptr(C.PG_MBUF_DATA_LEN)
	offHash    = uintptr(C.PG_MBUF_HASH)
	offBufLen  = uintptr(C.PG_MBUF_BUF_LEN)
)

// Headroom is RTE_PKTMBUF_HEADROOM of the installed DPDK.
const Headroom = int(C.PG_PKTMBUF_HEADROOM)

// DefaultDataRoom is RTE_MBUF_DEFAULT_DATAROOM + headroom, the usual
// data_room_size of a pktmbuf pool.
const DefaultDataRoom = int(C.PG_MBUF_DEFAULT_DATAROOM) + Headroom

// Available reports whether this binary has the binding.
func Available() bool { return true }

// The EAL runs on one OS thread for its whole life: rte_eal_init makes the
// calling thread the main lcore (thread-local lcore id, mempool cache), so
// that thread must never run another goroutine that could register itself
// as a worker lcore. ealThread keeps it locked and runs main-lcore calls.
var eal struct {
	mu    sync.Mutex
	state int // 0 never, 1 up, 2 failed or cleaned up
	calls chan func()
}

func errnoErr(rc C.int) error {
	if rc < 0 {
		rc = -rc
	}
	return syscall.Errno(rc)
}

func rteErr() error { return syscall.Errno(C.pg_errno()) }

// Init runs rte_eal_init with args (without a program name) on a dedicated
// locked OS thread. It succeeds once per process; DPDK cannot be
// initialised again, even after Cleanup.
func Init(args []string) error {
	eal.mu.Lock()
	defer eal.mu.Unlock()
	switch eal.state {
	case 1:
		return fmt.Errorf("%w: already initialised", ErrEAL)
	case 2:
		return fmt.Errorf("%w: cannot be initialised twice in one process", ErrEAL)
	}
	calls := make(chan func())
	result := make(chan error, 1)
	go ealThread(args, calls, result)
	if err := <-result; err != nil {
		eal.state = 2
		return err
	}
	eal.state = 1
	eal.calls = calls
	return nil
}

func ealThread(args []string, calls chan func(), result chan<- error) {
	// Never unlocked: when this goroutine returns, Go ends the thread with
	// the main lcore's identity instead of reusing it.
	runtime.LockOSThread()
	var cpus unix.CPUSet
	haveCPUs := unix.SchedGetaffinity(0, &cpus) == nil

	argv := make([]*C.char, 0, len(args)+1)
	argv = append(argv, C.CString("peergate"))
	for _, a := range args {
		argv = append(argv, C.CString(a))
	}
	// The EAL may keep pointers into argv: copy it to C memory, never freed.
	cargv := (**C.char)(C.calloc(C.size_t(len(argv)+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	copy(unsafe.Slice(cargv, len(argv)), argv)
	rc := C.rte_eal_init(C.int(len(argv)), cargv)
	if rc < 0 {
		result <- fmt.Errorf("%w: rte_eal_init %q: %v", ErrEAL, args, rteErr())
		return
	}
	// The EAL pinned this thread to the main lcore's CPU; it only sleeps
	// from now on, but the Go runtime should not inherit a narrow mask for
	// threads it clones from here.
	if haveCPUs {
		_ = unix.SchedSetaffinity(0, &cpus)
	}
	result <- nil
	for f := range calls {
		f()
	}
}

// onEAL runs f on the main lcore's thread.
func onEAL(f func()) error {
	eal.mu.Lock()
	calls := eal.calls
	up := eal.state == 1
	eal.mu.Unlock()
	if !up {
		return fmt.Errorf("%w: not initialised", ErrEAL)
	}
	done := make(chan struct{})
	calls <- func() { f(); close(done) }
	<-done
	return nil
}

// Initialized reports whether Init succeeded and Cleanup has not run.
func Initialized() bool {
	eal.mu.Lock()
	defer eal.mu.Unlock()
	return eal.state == 1
}

// Cleanup runs rte_eal_cleanup on the main lcore's thread, releasing DPDK's
// memory, then removes the runtime directory if the EAL left it empty (as
// it does with --no-shconf, once this process's own sockets are gone):
// 22.11 never removes it, and a directory per run piles up under
// /var/run/dpdk. Other files in it are left alone: they may serve secondary
// processes. Ports and pools must be closed first; no DPDK call is valid
// after.
func Cleanup() error {
	var rc C.int
	var dir string
	if err := onEAL(func() {
		dir = C.GoString(C.rte_eal_get_runtime_dir())
		rc = C.rte_eal_cleanup()
	}); err != nil {
		return err
	}
	if dir != "" {
		removeOwnSockets(dir)
		_ = os.Remove(dir) // fails, harmlessly, when not empty
	}
	eal.mu.Lock()
	close(eal.calls)
	eal.state = 2
	eal.mu.Unlock()
	if rc != 0 {
		return fmt.Errorf("rte_eal_cleanup: %w", errnoErr(rc))
	}
	return nil
}

// removeOwnSockets unlinks the unix sockets in dir that this process
// listens on: the telemetry socket. DPDK unlinks it from an atexit handler,
// which a Go program never runs (os.Exit is the exit_group system call),
// so every run left it behind, and with it the directory. A socket is this
// process's when one of its descriptors is the socket bound to that path
// (/proc/net/unix names the socket inode of each bound path); a socket of
// another process that shares the file prefix stays.
func removeOwnSockets(dir string) {
	own := map[string]bool{} // "socket:[inode]" of our descriptors
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			own[l] = true
		}
	}
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return
	}
	// Num RefCount Protocol Flags Type St Inode Path; St 01 (unconnected)
	// is a listener's, and the path is the rest of the line.
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[5] != "01" || !own["socket:["+f[6]+"]"] {
			continue
		}
		path := strings.Join(f[7:], " ")
		if filepath.Dir(path) == dir {
			_ = os.Remove(path)
		}
	}
}

// RegisterThread makes the calling OS thread a DPDK lcore
// (rte_thread_register) so it gets an lcore id and mempool caches. The
// caller must hold runtime.LockOSThread for as long as it uses DPDK, and
// should pin the thread first (the lcore records the thread's CPU set).
func RegisterThread() (lcore int, err error) {
	if C.rte_thread_register() != 0 {
		return -1, fmt.Errorf("rte_thread_register: %w", rteErr())
	}
	return int(C.rte_lcore_id()), nil
}

// UnregisterThread releases the calling thread's lcore id.
func UnregisterThread() { C.rte_thread_unregister() }

// LcoreID is the calling thread's lcore id, or -1 for a non-DPDK thread.
func LcoreID() int {
	id := C.rte_lcore_id()
	if id == C.LCORE_ID_ANY {
		return -1
	}
	return int(id)
}

// TSCHz is the timestamp counter's frequency as DPDK measured it: the
// clock behind "cycles per packet".
func TSCHz() uint64 { return uint64(C.rte_get_tsc_hz()) }

var errNoMem = errors.New("out of memory")
