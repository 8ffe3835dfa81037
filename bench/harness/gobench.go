package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Bench is one line of `go test -bench` output.
type Bench struct {
	Name    string             // without "Benchmark" and the -GOMAXPROCS suffix
	N       int                // iterations
	Metrics map[string]float64 // unit -> value ("ns/op", "B/op", custom units)
}

// ParseBench reads the benchmark lines of `go test -bench` output; other
// lines are ignored.
func ParseBench(r io.Reader) map[string]Bench {
	out := map[string]Bench{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		b := Bench{Name: name, N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Metrics[f[i+1]] = v
		}
		out[name] = b
	}
	return out
}

// Runner runs commands in the repository and keeps their output for the
// log.
type Runner struct {
	Root string    // repository root
	Log  io.Writer // commands and their output go here
	Env  []string  // extra environment
}

// Run runs name args in Root and returns stdout; stderr goes to the log.
func (r *Runner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	fmt.Fprintf(r.Log, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.Root
	cmd.Env = append(os.Environ(), r.Env...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, r.Log)
	cmd.Stderr = r.Log
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.Bytes(), nil
}

// GoBench runs `go test -bench` and parses it. The returned command is the
// one to reproduce the run from the repository root.
func (r *Runner) GoBench(ctx context.Context, pkg, pattern, benchtime string, extra ...string) (map[string]Bench, string, []byte, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", "1"}
	args = append(args, extra...)
	args = append(args, pkg)
	cmd := "go " + shellJoin(args)
	out, err := r.Run(ctx, "go", args...)
	return ParseBench(bytes.NewReader(out)), cmd, out, err
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " '^$|*?()[]{}\\\"<>&;") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}
