package harness

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine names where a result was measured.
type Machine struct {
	Hostname  string  `json:"hostname"`
	CPUModel  string  `json:"cpu_model"`
	Cores     int     `json:"cores"`
	TSCMHz    float64 `json:"tsc_mhz"` // /proc/cpuinfo's "cpu MHz" unless a DPDK run reported rte_get_tsc_hz
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go_version"`
	// LoadAvg is the 1-minute load average when the scenario started: the
	// machine may be shared, and wall-clock figures suffer from it.
	LoadAvg float64 `json:"load_avg"`
}

// ThisMachine reads /proc and uname.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case k == "model name" && m.CPUModel == "":
				m.CPUModel = v
			case k == "cpu MHz" && m.TSCMHz == 0:
				m.TSCMHz, _ = strconv.ParseFloat(v, 64)
			}
		}
		f.Close()
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	m.LoadAvg = LoadAvg()
	return m
}

// LoadAvg is the 1-minute load average (0 when unknown).
func LoadAvg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// Commit is the tree's HEAD and whether it has uncommitted changes.
func Commit(dir string) (string, bool) {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	st, _ := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(st))) > 0
}
