package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The machine may be shared: a forwarding thread that gets only part of its
// core moves fewer packets per second of wall time. Packets per second of
// the thread's own CPU time (utime+stime from /proc) is the figure that
// compares across runs; both are reported.

const clockTick = 100 // USER_HZ on Linux

// threadCPU returns the CPU time used so far by thread tid of process pid.
func threadCPU(pid, tid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// Fields after the command name (which is in parentheses).
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat for thread %d", tid)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// threadsByName finds the threads of pid whose names start with prefix.
func threadsByName(pid int, prefix string) ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		name, err := os.ReadFile(filepath.Join(t, "comm"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(name)), prefix) {
			if tid, err := strconv.Atoi(filepath.Base(t)); err == nil {
				out = append(out, tid)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no thread %q in process %d", prefix, pid)
	}
	return out, nil
}

// usableCPUs lists the CPUs this process may run on.
func usableCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("cpu affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// twoCores picks the CPUs of the two-worker runs: the one-core runs' core
// first, then a CPU other than 0 (where the EAL's main lcore, testpmd's
// stats loop and Go's runtime live), and CPU 0 only when there is no other
// one. It returns nil when fewer than two CPUs are usable; shared reports
// that a worker shares CPU 0 with the main lcore.
func twoCores(core int, cpus []int) (cores []int, shared bool) {
	if len(cpus) < 2 || !slices.Contains(cpus, core) {
		return nil, false
	}
	cores = []int{core}
	for _, c := range cpus {
		if c != 0 && c != core {
			return append(cores, c), core == 0
		}
	}
	if core != 0 && slices.Contains(cpus, 0) {
		return append(cores, 0), true
	}
	return nil, false
}
