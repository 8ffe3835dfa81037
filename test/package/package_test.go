// Package packaging_test checks the Debian package scripts/package.sh
// builds (the files dpkg -c lists, the control fields, the systemd units)
// and that the deploy/ examples agree with the daemons: the example
// manifest validates and the flags the units pass exist.
//
// It needs dpkg-deb and skips without it. It packages the binaries in
// $PEERGATE_BIN (set by `make test`) or builds ./cmd/... itself; a command
// that does not build yet is replaced by a stand-in file, said in the log,
// so the packaging is still checked.
package packaging_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/peergate/peergate/controlplane/manifest"
	"github.com/peergate/peergate/controlplane/validate"
)

var commands = []string{"controlplane", "dataplane", "gwctl"}

// repoRoot is the module root, two levels above this file.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// built holds the result of building the commands once per test binary.
var built struct {
	once    sync.Once
	dir     string
	failed  map[string]string // command -> build output
	cleanup func()
}

// binaries returns a directory with the three commands, and which of them
// are stand-ins because they do not build.
func binaries(t *testing.T) (dir string, standIns map[string]string) {
	t.Helper()
	if d := os.Getenv("PEERGATE_BIN"); d != "" {
		complete := true
		for _, c := range commands {
			if _, err := os.Stat(filepath.Join(d, c)); err != nil {
				complete = false
			}
		}
		if complete {
			return d, nil
		}
		t.Logf("PEERGATE_BIN=%s lacks some commands; building them", d)
	}
	root := repoRoot(t)
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "peergate-package-bin-")
		if err != nil {
			built.failed = map[string]string{"*": err.Error()}
			return
		}
		built.dir = dir
		built.failed = map[string]string{}
		for _, c := range commands {
			cmd := exec.Command(goTool(), "build", "-o", filepath.Join(dir, c), "./cmd/"+c)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				built.failed[c] = strings.TrimSpace(string(out))
				stub := "#!/bin/sh\necho 'stand-in: cmd/" + c + " did not build' >&2\nexit 1\n"
				if werr := os.WriteFile(filepath.Join(dir, c), []byte(stub), 0o755); werr != nil {
					built.failed["*"] = werr.Error()
				}
			}
		}
	})
	if msg, ok := built.failed["*"]; ok {
		t.Fatalf("preparing binaries: %s", msg)
	}
	for c, out := range built.failed {
		t.Logf("cmd/%s does not build yet; packaging a stand-in for it:\n%s", c, out)
	}
	return built.dir, built.failed
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if pkgCache.deb != "" {
		os.RemoveAll(filepath.Dir(pkgCache.deb))
	}
	os.Exit(code)
}

func needDpkg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "dpkg", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: packaging needs Debian's dpkg and binutils", tool)
		}
	}
}

// pkgCache builds the package once for the tests that only read it.
var pkgCache struct {
	once sync.Once
	deb  string
	out  string
	err  error
}

func buildPackage(t *testing.T) string {
	t.Helper()
	needDpkg(t)
	bin, _ := binaries(t)
	pkgCache.once.Do(func() {
		dist, err := os.MkdirTemp("", "peergate-package-dist-")
		if err != nil {
			pkgCache.err = err
			return
		}
		// Uncompressed: the contents are what is tested, and xz over
		// ~50 MB of binaries takes a minute on a loaded machine.
		out, err := runPackage(t, map[string]string{
			"BIN_DIR": bin, "DIST_DIR": dist, "PEERGATE_DEB_COMPRESS": "none",
		})
		pkgCache.out, pkgCache.err = out, err
		pkgCache.deb = strings.TrimSpace(lastLine(out))
	})
	if pkgCache.err != nil {
		t.Fatalf("scripts/package.sh failed: %v\n%s", pkgCache.err, pkgCache.out)
	}
	return pkgCache.deb
}

func runPackage(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "package.sh"))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stderr.String() + stdout.String(), err
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPackageListsTheBinariesUnitsAndConfig(t *testing.T) {
	deb := buildPackage(t)
	// dpkg -c prints "MODE OWNER SIZE DATE TIME ./PATH".
	listed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(output(t, "dpkg", "-c", deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		listed[f[5]] = f[0] + " " + f[1]
	}
	for _, tc := range []struct {
		path, modeOwner string
	}{
		{"./usr/sbin/peergate-controlplane", "-rwxr-xr-x root/root"},
		{"./usr/sbin/peergate-dataplane", "-rwxr-xr-x root/root"},
		{"./usr/bin/gwctl", "-rwxr-xr-x root/root"},
		{"./lib/systemd/system/peergate-controlplane.service", "-rw-r--r-- root/root"},
		{"./lib/systemd/system/peergate-dataplane.service", "-rw-r--r-- root/root"},
		{"./lib/systemd/system/peergate-devbind.service", "-rw-r--r-- root/root"},
		{"./usr/libexec/peergate/peergate-devbind", "-rwxr-xr-x root/root"},
		{"./usr/lib/sysusers.d/peergate.conf", "-rw-r--r-- root/root"},
		{"./lib/udev/rules.d/60-peergate-vfio.rules", "-rw-r--r-- root/root"},
		{"./etc/peergate/peergate.env", "-rw-r--r-- root/root"},
		{"./etc/peergate/manifests/", "drwxr-xr-x root/root"},
		{"./usr/share/doc/peergate/deploy.md", "-rw-r--r-- root/root"},
		{"./usr/share/doc/peergate/examples/manifests/gateway.yaml", "-rw-r--r-- root/root"},
		{"./usr/share/doc/peergate/examples/sysctl.d/80-peergate-hugepages.conf", "-rw-r--r-- root/root"},
		{"./usr/share/doc/peergate/examples/systemd/peergate-dataplane.service.d/vfio-noiommu.conf", "-rw-r--r-- root/root"},
	} {
		t.Run(strings.TrimPrefix(tc.path, "./"), func(t *testing.T) {
			got, ok := listed[tc.path]
			if !ok {
				t.Fatalf("dpkg -c does not list %s", tc.path)
			}
			if got != tc.modeOwner {
				t.Errorf("%s is %q, want %q", tc.path, got, tc.modeOwner)
			}
		})
	}
	// The example manifest must not be live on install: the controlplane
	// applies everything in /etc/peergate/manifests at start.
	for p := range listed {
		if strings.HasPrefix(p, "./etc/peergate/manifests/") && p != "./etc/peergate/manifests/" {
			t.Errorf("package installs %s: the manifests directory must ship empty", p)
		}
	}
}

// debianVersion is Debian policy's upstream version without epoch or
// revision: starts with a digit, then alphanumerics and . + ~.
var debianVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

func TestControlFieldsAreSane(t *testing.T) {
	deb := buildPackage(t)
	fields := map[string]string{}
	for _, line := range strings.Split(output(t, "dpkg-deb", "-f", deb), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	arch := strings.TrimSpace(output(t, "dpkg", "--print-architecture"))
	for _, tc := range []struct {
		field string
		ok    func(string) bool
		want  string
	}{
		{"Package", func(v string) bool { return v == "peergate" }, "peergate"},
		{"Version", debianVersion.MatchString, "a Debian version"},
		{"Architecture", func(v string) bool { return v == arch }, arch},
		{"Maintainer", regexp.MustCompile(`^.+ <[^@ ]+@[^@ ]+>$`).MatchString, "Name <address>"},
		{"Installed-Size", regexp.MustCompile(`^[1-9][0-9]*$`).MatchString, "a size in KiB"},
		{"Depends", func(v string) bool { return strings.Contains(v, "dpdk") }, "dpdk (for dpdk-devbind.py)"},
		{"Section", func(v string) bool { return v == "net" }, "net"},
		{"Description", func(v string) bool { return len(v) > 10 }, "a synopsis"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			v, ok := fields[tc.field]
			if !ok {
				t.Fatalf("control has no %s field", tc.field)
			}
			if !tc.ok(v) {
				t.Errorf("%s is %q, want %s", tc.field, v, tc.want)
			}
		})
	}
	if want := "peergate_" + fields["Version"] + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file is %s, want %s", filepath.Base(deb), want)
	}
	if conffiles := output(t, "dpkg-deb", "-I", deb, "conffiles"); !strings.Contains(conffiles, "/etc/peergate/peergate.env") {
		t.Errorf("conffiles does not protect /etc/peergate/peergate.env:\n%s", conffiles)
	}
}

func TestPackageScriptRefusesBadInput(t *testing.T) {
	needDpkg(t)
	bin, _ := binaries(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"a version starting with v is refused", map[string]string{"BIN_DIR": bin, "PEERGATE_VERSION": "v1.0"}, "not a valid Debian version"},
		{"a version with a hyphen is refused", map[string]string{"BIN_DIR": bin, "PEERGATE_VERSION": "1.0-rc1"}, "not a valid Debian version"},
		{"missing binaries are named", map[string]string{"BIN_DIR": empty}, "controlplane missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["DIST_DIR"] = t.TempDir()
			out, err := runPackage(t, tc.env)
			if err == nil {
				t.Fatalf("package.sh succeeded, want failure:\n%s", out)
			}
			if !strings.Contains(out, tc.wantErr) {
				t.Errorf("package.sh said %q, want it to mention %q", out, tc.wantErr)
			}
		})
	}
}

// TestUnitsPassSystemdVerify runs `systemd-analyze verify` over the units
// as installed by the package (plus the no-IOMMU drop-in), in a scratch
// root that also holds the host's own units for the targets they name.
func TestUnitsPassSystemdVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian's systemd package)")
	}
	hostUnits := "/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(hostUnits, "multi-user.target")); err != nil {
		t.Skipf("no systemd units in %s to resolve targets against", hostUnits)
	}
	deb := buildPackage(t)
	root := t.TempDir()
	output(t, "dpkg-deb", "-x", deb, root)
	units := filepath.Join(root, "lib", "systemd", "system")
	output(t, "cp", "-an", hostUnits+"/.", units+"/")
	output(t, "cp", "-r", filepath.Join(root, "usr/share/doc/peergate/examples/systemd/peergate-dataplane.service.d"), units+"/")
	for _, unit := range []string{"peergate-controlplane.service", "peergate-dataplane.service", "peergate-devbind.service"} {
		t.Run(unit, func(t *testing.T) {
			out, err := exec.Command(analyze, "verify", "--root="+root, filepath.Join(units, unit)).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
		})
	}
}

func TestExampleManifestValidates(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "etc", "peergate", "manifests")
	objs, err := manifest.LoadPaths(dir)
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	warnings, errs := validate.Validate(manifest.NewConfig(objs))
	for _, w := range warnings {
		t.Logf("warning: %v", w)
	}
	for _, e := range errs {
		t.Errorf("example manifest: %v", e)
	}
}

// envFile reads KEY="value" lines of deploy/etc/peergate/peergate.env.
func envFile(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "etc", "peergate", "peergate.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

var longFlag = regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)

// flagsIn lists the --flags of s, without the dashes.
func flagsIn(s string) []string {
	var out []string
	for _, m := range longFlag.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestUnitFlagsExistInTheDaemons asks each daemon's --help for the flags
// the units and the environment file pass it, so a renamed flag cannot
// leave the units starting a daemon that refuses its command line.
func TestUnitFlagsExistInTheDaemons(t *testing.T) {
	bin, standIns := binaries(t)
	env := envFile(t)
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "peergate-dataplane.service"))
	if err != nil {
		t.Fatal(err)
	}
	var dataplaneExec string
	for _, line := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(line, "ExecStart=") {
			dataplaneExec = line
		}
	}
	for _, tc := range []struct {
		name    string
		command string
		args    []string // before --help
		flags   []string
	}{
		{"the controlplane accepts CONTROLPLANE_ARGS", "controlplane", nil, flagsIn(env["CONTROLPLANE_ARGS"])},
		{"the dataplane run command accepts DATAPLANE_ARGS and --eal", "dataplane", []string{"run"},
			append(flagsIn(env["DATAPLANE_ARGS"]), flagsIn(dataplaneExec)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := standIns[tc.command]; ok {
				t.Skipf("cmd/%s does not build yet", tc.command)
			}
			if len(tc.flags) == 0 {
				t.Fatal("no flags found to check")
			}
			out, _ := exec.Command(filepath.Join(bin, tc.command), append(tc.args, "--help")...).CombinedOutput()
			help := string(out)
			if len(tc.args) > 0 && strings.Contains(help, "unknown command") {
				t.Skipf("%s has no %q command yet; the unit runs `%s %s`", tc.command, tc.args[0], tc.command, strings.Join(tc.args, " "))
			}
			for _, f := range tc.flags {
				if !regexp.MustCompile(`(?m)^\s+--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
					t.Errorf("%s %s --help does not list --%s", tc.command, strings.Join(tc.args, " "), f)
				}
			}
		})
	}
}

// TestDevbindChecksItsInputBeforeTouchingDrivers runs peergate-devbind on
// inputs that must not reach modprobe or dpdk-devbind.py, so it is safe on
// any machine.
func TestDevbindChecksItsInputBeforeTouchingDrivers(t *testing.T) {
	script := filepath.Join(repoRoot(t), "deploy", "libexec", "peergate-devbind")
	for _, tc := range []struct {
		name    string
		pci     string
		wantErr bool
		wantMsg string
	}{
		{"no PCI device means a vdev-only setup and succeeds", "", false, "no NIC to bind"},
		{"an address that does not exist is named and fails", "9999:99:99.9", true, "PCI device 9999:99:99.9 not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(script)
			cmd.Env = append(os.Environ(), "PEERGATE_PCI="+tc.pci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantErr {
				t.Fatalf("peergate-devbind with PEERGATE_PCI=%q: err %v, want failure %v\n%s", tc.pci, err, tc.wantErr, out)
			}
			if !strings.Contains(string(out), tc.wantMsg) {
				t.Errorf("peergate-devbind said %q, want %q", out, tc.wantMsg)
			}
		})
	}
}

// TestShellScriptsParse catches syntax errors in the scripts that only run
// on a deployed host or in the VM.
func TestShellScriptsParse(t *testing.T) {
	root := repoRoot(t)
	for _, tc := range []struct{ shell, path string }{
		{"sh", "deploy/libexec/peergate-devbind"},
		{"bash", "deploy/vagrant/provision.sh"},
		{"bash", "scripts/package.sh"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if out, err := exec.Command(tc.shell, "-n", filepath.Join(root, tc.path)).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", tc.shell, tc.path, err, out)
			}
		})
	}
}

// TestVagrantfileValidates runs `vagrant validate` (Debian's vagrant
// package; with vagrant-libvirt installed the libvirt settings are checked
// too). VirtualBox is not in Debian, so its block is only parsed.
func TestVagrantfileValidates(t *testing.T) {
	vagrant, err := exec.LookPath("vagrant")
	if err != nil {
		t.Skip("vagrant not found (apt-get install vagrant vagrant-libvirt)")
	}
	tmp := t.TempDir()
	validate := func(args ...string) ([]byte, error) {
		cmd := exec.Command(vagrant, append([]string{"validate"}, args...)...)
		cmd.Dir = repoRoot(t)
		// Keep vagrant's state out of the tree and out of $HOME.
		cmd.Env = append(os.Environ(), "VAGRANT_DOTFILE_PATH="+filepath.Join(tmp, "dot"), "VAGRANT_HOME="+filepath.Join(tmp, "home"))
		return cmd.CombinedOutput()
	}
	out, err := validate()
	if err != nil && bytes.Contains(out, []byte("No usable default provider")) {
		// A machine without a usable provider (no libvirt daemon, no
		// VirtualBox) can still check everything but the provider blocks.
		t.Logf("no usable Vagrant provider here: validating with --ignore-provider (the libvirt and virtualbox blocks are parsed, not checked)")
		out, err = validate("--ignore-provider")
	}
	if err != nil {
		t.Errorf("vagrant validate: %v\n%s", err, out)
	}
}
