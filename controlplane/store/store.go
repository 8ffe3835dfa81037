// Package store persists the controlplane's accepted configuration in a
// state directory so that a restart loses nothing: the objects as
// multi-document YAML (manifest.Marshal, readable and re-appliable with
// gwctl) under a header carrying the generation, where each object came
// from, and a checksum of the body.
//
// Writes are atomic (temporary file, fsync, rename, fsync of the
// directory) and the previous good copy is kept beside the current one, so
// a file cut short by a crash or a full disk is detected by its checksums
// (of the body, and of generation, sources and body) and the previous copy
// is loaded instead. A file that exists but cannot be read is an error, not
// damage: it may be the newest state. The store neither validates nor
// compiles what it holds.
//
// One controlplane owns a state directory at a time: Open takes exclusive
// locks (flock on the directory and on LockFile), so a second controlplane
// started on the same directory fails at once instead of interleaving its
// saves with the first one's, even if LockFile was removed. The kernel
// drops the locks when the process dies, however it dies, so a crash never
// leaves the directory locked.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peergate/peergate/controlplane/manifest"
)

// File names inside the state directory.
const (
	CurrentFile  = "config.yaml"
	PreviousFile = "config.prev.yaml"
	LockFile     = "lock"
)

// tempPattern names Save's temporary files; Open removes those a crash left.
const tempPattern = ".config-*.tmp"

// ErrLocked is returned by Open when another process holds the directory.
var ErrLocked = errors.New("state directory in use by another controlplane")

const magic = "# peergate controlplane state v1"

// State is one accepted configuration.
type State struct {
	Generation uint64
	Objects    []manifest.Object
}

// Store reads and writes the state of one directory. It is not safe for
// concurrent use; the controlplane server serialises its writes.
type Store struct {
	dir  string
	log  *slog.Logger
	lock *os.File // holds the flock until Close or the process's end
	// dirLock holds a flock on the directory itself: removing LockFile
	// (clearing the directory, an rsync restore) must not let a second
	// controlplane in.
	dirLock *os.File
}

// Open returns the store of dir, creating the directory (0700) if needed,
// and locks it for this process (ErrLocked when another process holds it).
// Temporary files left by a save that a crash interrupted are removed: the
// lock guarantees no live save owns them.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	// The directory's own lock excludes controlplanes of this version
	// whatever happens to the files in it; LockFile's also excludes older
	// versions, which lock only that file.
	dirLock, err := lockFile(dir, dir, os.O_RDONLY)
	if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
		// Some filesystems (NFS emulates flock with write locks) cannot
		// lock a directory opened read-only: LockFile alone guards it.
		log.Warn("cannot lock the state directory itself; relying on its lock file", "dir", dir, "err", err)
		dirLock, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	lock, err := lockFile(dir, filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE)
	if err != nil {
		if dirLock != nil {
			dirLock.Close()
		}
		return nil, err
	}
	stale, _ := filepath.Glob(filepath.Join(dir, tempPattern))
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			log.Warn("cannot remove a temporary state file left by a crash", "file", f, "err", err)
			continue
		}
		log.Info("removed a temporary state file left by an interrupted save", "file", f)
	}
	return &Store{dir: dir, log: log, lock: lock, dirLock: dirLock}, nil
}

// lockFile opens path and takes an exclusive flock on it without waiting.
func lockFile(dir, path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: lock: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("state dir %s: lock %s: %w", dir, path, err)
	}
	return f, nil
}

// Close releases the directory's lock. The store must not be used after.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	if s.dirLock != nil {
		err = errors.Join(err, s.dirLock.Close())
	}
	s.lock, s.dirLock = nil, nil
	return err
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

// Load returns the last saved state. A missing, cut or corrupted current
// file falls back to the previous copy (logged); with neither, Load returns
// an empty State and no error. It fails when a file exists and cannot be
// read (permissions, a directory in its place): that file may well be the
// newest good state, and starting from an older copy would drop changes
// and reuse their generation numbers; and when both copies are corrupted.
func (s *Store) Load() (State, error) {
	cur := filepath.Join(s.dir, CurrentFile)
	prev := filepath.Join(s.dir, PreviousFile)
	st, err := readFile(cur)
	if err == nil {
		return st, nil
	}
	curMissing := errors.Is(err, fs.ErrNotExist)
	if !curMissing && !errors.Is(err, errDamaged) {
		return State{}, fmt.Errorf("load state: %w (not falling back to an older copy: make the file readable by this user)", err)
	}
	pst, perr := readFile(prev)
	switch {
	case perr == nil:
		if curMissing {
			// A crash between the two renames of Save leaves only the
			// previous copy.
			s.log.Warn("state file missing, loading the previous copy", "file", prev)
		} else {
			pst.Generation = s.recoverDamaged(cur, err, pst)
		}
		return pst, nil
	case errors.Is(perr, fs.ErrNotExist) && curMissing:
		return State{}, nil
	case errors.Is(perr, fs.ErrNotExist):
		return State{}, fmt.Errorf("load state: %w (and no previous copy %s)", err, prev)
	default:
		if curMissing {
			return State{}, fmt.Errorf("load state: previous copy: %w", perr)
		}
		return State{}, fmt.Errorf("load state: %w; previous copy: %w", err, perr)
	}
}

// recoverDamaged handles a current file damaged as the error damage says,
// when Load falls back to the previous copy pst. It returns the generation
// to serve pst under: above the damaged file's when its header still says
// which (that number may be live on dataplanes with other content and must
// not be reused).
// The damaged file is kept for a post-mortem under a new hard link or copy
// (a unique name per incident), and pst is written back over it with Save's
// atomic rename, so that a restart finds that generation too. Every crash
// point leaves either the damaged file, and the next Load does this again
// with the same outcome, or the written-back copy. If the write-back
// fails (a full disk), pst is served all the same: the damaged file stays,
// and so does the next Load's outcome.
func (s *Store) recoverDamaged(cur string, damage error, pst State) uint64 {
	gen := pst.Generation
	if g, ok := damagedGeneration(cur); ok && g >= gen && g < math.MaxUint64 {
		gen = g + 1
	}
	kept := fmt.Sprintf("%s.damaged-%s", cur, time.Now().UTC().Format("20060102T150405.000000000"))
	if err := keepCopy(cur, kept); err != nil {
		s.log.Warn("cannot keep the damaged state file aside", "file", cur, "err", err)
		kept = ""
	}
	s.log.Error("state file damaged, loading the previous copy", "file", cur, "err", damage, "kept", kept,
		"previous", filepath.Join(s.dir, PreviousFile), "generation", gen)
	pst.Generation = gen
	if err := s.Save(pst); err != nil {
		s.log.Error("cannot write the previous copy back; the damaged file stays", "file", cur, "err", err)
	}
	return gen
}

// keepCopy makes kept a copy of cur: a hard link, or where the filesystem
// has none (vfat, some FUSE mounts) a new file with cur's bytes, synced.
func keepCopy(cur, kept string) error {
	if os.Link(cur, kept) == nil {
		return nil
	}
	data, err := os.ReadFile(cur)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(kept, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Save writes st as the current state and keeps the former current file as
// the previous copy. When Save returns nil the state is on disk.
func (s *Store) Save(st State) error {
	data, err := encode(st)
	if err != nil {
		return err
	}
	cur := filepath.Join(s.dir, CurrentFile)
	prev := filepath.Join(s.dir, PreviousFile)
	tmp, err := os.CreateTemp(s.dir, tempPattern)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: close %s: %w", tmp.Name(), err)
	}
	// Keep the current file as the previous copy only when it is good: a
	// corrupted current file must not push out the last good copy. One
	// that cannot be read may be good: refuse rather than lose it.
	switch _, err := readFile(cur); {
	case err == nil:
		if err := os.Rename(cur, prev); err != nil {
			return fmt.Errorf("save state: keep previous copy: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errDamaged):
	default:
		return fmt.Errorf("save state: cannot read the current state file, which may be the newest good one: %w", err)
	}
	if err := os.Rename(tmp.Name(), cur); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save state: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save state: fsync dir %s: %w", dir, err)
	}
	return nil
}

// header is the metadata line of a state file.
type header struct {
	Generation uint64   `json:"generation"`
	Objects    int      `json:"objects"`
	SHA256     string   `json:"sha256"` // of the body
	Sources    []source `json:"sources"`
	// Check is the sha256 of the generation, the sources and the body
	// (checkSum), so that a changed generation is caught too. Files
	// written before it existed have only SHA256.
	Check string `json:"check,omitempty"`
}

// checkSum is header.Check: the generation, the sources exactly as the
// meta line holds them (JSON; Load hashes those bytes, not a re-encoding,
// which would differ for a path that is not valid UTF-8), then the body.
func checkSum(gen uint64, sourcesJSON, body []byte) string {
	h := sha256.New()
	h.Write([]byte(strconv.FormatUint(gen, 10) + "\x00"))
	h.Write(sourcesJSON)
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

type source struct {
	File  string `json:"file"`
	Index int    `json:"index"`
}

// encode writes the header as YAML comments, then a "---" line, then the
// objects. Comments before the first "---" form a document that YAML
// parsers, and manifest.Parse, skip: the file stays a valid manifest.
func encode(st State) ([]byte, error) {
	body := manifest.Marshal(st.Objects)
	sum := sha256.Sum256(body)
	h := header{Generation: st.Generation, Objects: len(st.Objects), SHA256: hex.EncodeToString(sum[:])}
	for _, o := range st.Objects {
		h.Sources = append(h.Sources, source{File: o.Source.File, Index: o.Source.Index})
	}
	// The same bytes as the "sources" field of the meta line below.
	sj, err := json.Marshal(h.Sources)
	if err != nil {
		return nil, fmt.Errorf("save state: encode header: %w", err)
	}
	h.Check = checkSum(h.Generation, sj, body)
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("save state: encode header: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(magic + "\n")
	b.WriteString("# Written by the controlplane; apply changes with gwctl, do not edit.\n")
	b.WriteString("# generation: " + strconv.FormatUint(st.Generation, 10) + "\n")
	b.WriteString("# meta: ")
	b.Write(hj)
	b.WriteString("\n---\n")
	b.Write(body)
	return b.Bytes(), nil
}

// damagedGeneration reads the generation from the header of a damaged
// state file: the larger of its "# generation:" line and its meta line,
// whichever parse. The header failed its checksum, so either may be wrong;
// raising the next generation too far only skips numbers, too little would
// reuse one.
func damagedGeneration(path string) (uint64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	rh := splitHeader(data)
	var gen uint64
	found := false
	if g, err := strconv.ParseUint(rh.gen, 10, 64); err == nil {
		gen, found = g, true
	}
	var h header
	if rh.meta != "" && json.Unmarshal([]byte(rh.meta), &h) == nil {
		gen, found = max(gen, h.Generation), true
	}
	return gen, found
}

// rawHeader is a state file's header as text: its first line, the values
// of its "# generation: " and "# meta: " lines, and where the body starts
// (after the "---" line; whole is false when there is none).
type rawHeader struct {
	first, gen, meta string
	body             int
	whole            bool
}

func splitHeader(data []byte) rawHeader {
	var rh rawHeader
	n := 0
	for line := range strings.Lines(string(data)) {
		first := n == 0
		n += len(line)
		line = strings.TrimSuffix(line, "\n")
		if first {
			rh.first = line
		}
		if rest, ok := strings.CutPrefix(line, "# generation: "); ok {
			rh.gen = rest
		}
		if rest, ok := strings.CutPrefix(line, "# meta: "); ok {
			rh.meta = rest
		}
		if line == "---" {
			rh.body, rh.whole = n, true
			break
		}
	}
	return rh
}

// errDamaged marks a state file whose content is not a whole state (cut
// short, modified): Load falls back to the previous copy only for those.
var errDamaged = errors.New("damaged")

func readFile(path string) (State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	st, err := decode(path, data)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w: %w", path, errDamaged, err)
	}
	return st, nil
}

func decode(path string, data []byte) (State, error) {
	rh := splitHeader(data)
	if len(data) > 0 && rh.first != magic {
		return State{}, errors.New("not a peergate state file (bad first line)")
	}
	if !rh.whole || rh.meta == "" {
		return State{}, errors.New("truncated: header incomplete")
	}
	h := new(header)
	var raw struct {
		Sources json.RawMessage `json:"sources"`
	}
	if err := json.Unmarshal([]byte(rh.meta), h); err != nil {
		return State{}, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal([]byte(rh.meta), &raw); err != nil {
		return State{}, fmt.Errorf("header: %w", err)
	}
	body := data[rh.body:]
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != h.SHA256 {
		return State{}, fmt.Errorf("checksum mismatch (file cut short or modified): body sha256 %s, header says %s", got, h.SHA256)
	}
	if h.Check != "" {
		if checkSum(h.Generation, raw.Sources, body) != h.Check {
			return State{}, errors.New("header checksum mismatch (generation or sources modified)")
		}
	}
	objs, err := manifest.Parse(path, body)
	if err != nil {
		return State{}, fmt.Errorf("parse: %w", err)
	}
	if len(objs) != h.Objects {
		return State{}, fmt.Errorf("header says %d objects, body holds %d", h.Objects, len(objs))
	}
	if len(h.Sources) == len(objs) {
		for i := range objs {
			objs[i].Source = manifest.Source{File: h.Sources[i].File, Index: h.Sources[i].Index}
		}
	}
	return State{Generation: h.Generation, Objects: objs}, nil
}
