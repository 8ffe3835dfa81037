package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// defaultCores picks n CPUs from the process's affinity set: the last ones,
// so that the first stays with the main thread, the EAL and Go's runtime
// whenever the machine has more CPUs than workers.
func defaultCores(n int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("runtime: cpu affinity: %w", err)
	}
	var cpus []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("runtime: no usable cpu")
	}
	out := make([]int, n)
	for i := range out {
		// With more workers than spare CPUs, wrap around (workers share).
		out[i] = cpus[(len(cpus)-n+i+len(cpus)*n)%len(cpus)]
	}
	return out, nil
}
