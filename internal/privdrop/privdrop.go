// Package privdrop narrows the Linux capabilities a process holds to a set
// its caller names, on every thread.
//
// Capabilities belong to threads, not processes, and a Go program linked
// with cgo cannot change them on all its threads at once
// (syscall.AllThreadsSyscall refuses when cgo is on). Threads that C code
// starts later (DPDK's) would escape a per-thread change anyway. Reexec
// therefore drops the capabilities on one locked thread and executes the
// program again from it: every thread of the new program descends from
// that thread and holds only the kept set. For root the bounding set is cut
// too, so the new program (and anything it executes) cannot regain what was
// dropped; no_new_privs keeps set-uid and file-capability binaries from
// adding any back.
//
// The package decides nothing: which capabilities to keep is the caller's
// business.
package privdrop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a capability number (CAP_NET_RAW is 13).
type Cap uint

// Set is a set of capabilities, bit n for capability n.
type Set uint64

// names are the capabilities of Linux 6.x, by number, without "cap_".
var names = [...]string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// Of returns the set of caps.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// String lists the set as "cap_ipc_lock,cap_net_admin" (by number), or
// "none".
func (s Set) String() string {
	var parts []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			parts = append(parts, c.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// String is the capability's name as capabilities(7) spells it in lower
// case: "cap_net_raw".
func (c Cap) String() string {
	if int(c) < len(names) {
		return "cap_" + names[c]
	}
	return "cap_" + strconv.Itoa(int(c))
}

// Parse reads a comma-separated list of capability names, with or without
// "cap_" and in any case ("net_raw,CAP_IPC_LOCK"). "" and "none" are the
// empty set.
func Parse(list string) (Set, error) {
	var s Set
	if strings.EqualFold(strings.TrimSpace(list), "none") {
		return 0, nil
	}
	for _, f := range strings.Split(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		name := strings.TrimPrefix(f, "cap_")
		found := false
		for i, n := range names {
			if n == name {
				s |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown capability %q (see capabilities(7))", f)
		}
	}
	return s, nil
}

// State is a thread's capabilities.
type State struct {
	Effective, Permitted, Inheritable, Bounding, Ambient Set
}

// Current reads the calling thread's capabilities. Before Reexec every
// thread of a Go program holds the same ones.
func Current() (State, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return State{}, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) Set { return Set(lo) | Set(hi)<<32 }
	st := State{
		Effective:   join(data[0].Effective, data[1].Effective),
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}
	last, err := lastCap()
	if err != nil {
		return State{}, err
	}
	for c := Cap(0); c <= last; c++ {
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && in == 1 {
			st.Bounding |= 1 << c
		}
		if in, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); err == nil && in == 1 {
			st.Ambient |= 1 << c
		}
	}
	return st, nil
}

// Beyond is what st holds that keep does not: the capabilities Reexec
// would take away. The bounding set counts for root only, whose programs
// are given their bounding set at exec; another user gains nothing from it
// without set-uid or file-capability binaries, which no_new_privs rules
// out.
func (st State) Beyond(keep Set, root bool) Set {
	held := st.Effective | st.Permitted | st.Inheritable | st.Ambient
	if root {
		held |= st.Bounding
	}
	return held &^ keep
}

func lastCap() (Cap, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read the highest capability number: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %q is not a capability number", b)
	}
	return Cap(n), nil
}

// Reexec reduces the capabilities to keep and executes this program again
// (/proc/self/exe, same arguments) with envMarker set in its environment,
// so that Restricted(envMarker) tells the new program that the drop is
// done. It does not return on success. On error the calling thread may
// hold fewer capabilities than the others: the caller should exit.
//
// Reexec must run before the program depends on anything that does not
// survive exec (open listeners, child processes, C threads): it is meant
// for the first steps of main.
func Reexec(keep Set, envMarker string) error {
	// The drop and the exec must happen on the same thread: the new
	// program inherits that thread's capabilities. The thread is never
	// unlocked: on error it is left to die with its goroutine.
	runtime.LockOSThread()

	last, err := lastCap()
	if err != nil {
		return err
	}
	// The bounding set first: dropping from it needs CAP_SETPCAP, which
	// the capset below takes away unless it is kept.
	for c := Cap(0); c <= last; c++ {
		if keep.Has(c) {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil || in == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				// Without CAP_SETPCAP the bounding set stays. Under
				// no_new_privs the new program still gets no more than
				// the permitted set cut below (the kernel intersects what
				// an exec would grant with it); Current shows what is left.
				break
			}
			return fmt.Errorf("drop %s from the bounding set: %w", c, err)
		}
	}

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	lo, hi := uint32(keep), uint32(keep>>32)
	data[0].Effective &= lo
	data[0].Permitted &= lo
	data[0].Inheritable &= lo
	data[1].Effective &= hi
	data[1].Permitted &= hi
	data[1].Inheritable &= hi
	// Ambient capabilities not both permitted and inheritable are cleared
	// by the kernel with this call.
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset to %s: %w", keep, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}

	env := []string{envMarker + "=" + strconv.Itoa(os.Getpid())}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envMarker+"=") {
			env = append(env, kv)
		}
	}
	if err := unix.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("re-execute /proc/self/exe: %w", err)
	}
	return nil
}

// Restricted reports whether this program was started by Reexec with
// envMarker, and removes the marker from the environment so that programs
// it starts do not inherit it. The marker holds the process id, which exec
// keeps: a marker inherited from another process does not count.
func Restricted(envMarker string) bool {
	v, ok := os.LookupEnv(envMarker)
	if !ok {
		return false
	}
	os.Unsetenv(envMarker)
	return v == strconv.Itoa(os.Getpid())
}
