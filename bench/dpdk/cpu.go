package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

// threadByName finds the thread of pid whose name starts with prefix.
func threadByName(pid int, prefix string) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		return 0, err
	}
	for _, t := range tasks {
		name, err := os.ReadFile(filepath.Join(t, "comm"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(name)), prefix) {
			return strconv.Atoi(filepath.Base(t))
		}
	}
	return 0, fmt.Errorf("no thread %q in process %d", prefix, pid)
}
