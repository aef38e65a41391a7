package apparmor

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/nri-armor/nri-armor/policy"
)

// SecurityFS is where the kernel shows AppArmor's interface.
const SecurityFS = "/sys/kernel/security/apparmor"

// Classes are the classes the AppArmor backend enforces. Network rules are
// cgroup-BPF's on every node (ports, protocols: finer than AppArmor's
// families and types), so a profile leaves them to it (Restrict) rather
// than decide and alert twice; syscalls are seccomp's.
var Classes = []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassCapabilities}

// Restrict returns rs with only the rules of Classes: the set a node's
// profile is compiled from. The digest stays rs's (the profile's comment
// names the container's set).
func Restrict(rs *policy.RuleSet) *policy.RuleSet {
	if rs == nil {
		return nil
	}
	return &policy.RuleSet{
		Version: rs.Version, Digest: rs.Digest, Policies: rs.Policies,
		Process: rs.Process, File: rs.File, Capabilities: rs.Capabilities,
	}
}

// Needs says whether a container with set rs needs a profile on a node
// where AppArmor enforces Classes: when one of them has a rule.
func Needs(rs *policy.RuleSet) bool {
	if rs == nil {
		return false
	}
	for _, c := range Classes {
		if len(rs.Class(c).Rules) > 0 {
			return true
		}
	}
	return false
}

// Loader loads profiles into the running kernel with apparmor_parser and
// removes them. Each profile's text is kept in Dir (nri-armor's state
// directory, not /etc/apparmor.d: the node's own profiles are loaded from
// there at boot, and nri-armor's must not outlive the pods that need them
// through a reboot). It is safe for concurrent use.
type Loader struct {
	// Parser loads: its Path (or apparmor_parser found on PATH); Features
	// must be "" (the running kernel's).
	Parser Parser
	// Dir holds the profiles' files, one per name.
	Dir string
	// FS is AppArmor's securityfs directory; "" means SecurityFS.
	FS string

	mu sync.Mutex
	// loaded is the digest of the text last loaded, by name.
	loaded map[string][32]byte
}

// NewLoader makes dir and returns a loader keeping its files there.
func NewLoader(dir string, parser Parser) (*Loader, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("apparmor: %w", err)
	}
	if parser.Path == "" {
		path, err := FindParser()
		if err != nil {
			return nil, fmt.Errorf("apparmor: %w", err)
		}
		parser.Path = path
	}
	return &Loader{Parser: parser, Dir: dir, loaded: map[string][32]byte{}}, nil
}

func (l *Loader) fs() string {
	if l.FS == "" {
		return SecurityFS
	}
	return l.FS
}

// Load loads p, replacing the profile of that name in place (its
// processes keep running, under the new rules), unless the kernel holds
// it already as this loader last loaded it. It reports whether it loaded.
func (l *Loader) Load(p Profile) (bool, error) {
	if err := checkName(p.Name); err != nil {
		return false, err
	}
	sum := sha256.Sum256([]byte(p.Text))
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.loaded[p.Name]; ok && last == sum {
		if in, err := l.inKernel(p.Name); err == nil && in {
			return false, nil
		}
	}
	file := filepath.Join(l.Dir, p.Name)
	if err := writeFile(file, p.Text); err != nil {
		return false, fmt.Errorf("apparmor: profile %s: %w", p.Name, err)
	}
	// -r: replace (or add); -K: no cache (a profile changes with the
	// policies, and the cache would be the node's); the file, so that the
	// parser's errors name it.
	if _, _, err := l.Parser.exec("", "-r", "-K", "--abort-on-error", file); err != nil {
		delete(l.loaded, p.Name)
		return false, fmt.Errorf("apparmor: loading profile %s (%s): %w", p.Name, file, err)
	}
	l.loaded[p.Name] = sum
	return true, nil
}

// Unload removes the profile name from the kernel and its file. A
// profile's processes become unconfined when it goes: the caller removes
// only profiles no container uses. A profile the kernel does not hold is
// not an error.
func (l *Loader) Unload(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.loaded, name)
	err := os.WriteFile(filepath.Join(l.fs(), ".remove"), []byte(name), 0)
	if err != nil {
		// The kernel says ENOENT for a profile it does not hold (so does
		// a missing securityfs, where the profiles file is missing too).
		if in, ierr := l.inKernel(name); ierr == nil && !in {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("apparmor: removing profile %s: %w", name, err)
	}
	if rerr := os.Remove(filepath.Join(l.Dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("apparmor: %w", rerr)
	}
	return nil
}

// Loaded says whether the kernel holds profile name.
func (l *Loader) Loaded(name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inKernel(name)
}

// Names lists the nri-armor profiles the kernel holds (those of a former
// daemon too).
func (l *Loader) Names() ([]string, error) {
	var out []string
	err := l.profiles(func(name string) bool {
		if strings.HasPrefix(name, NamePrefix) && !strings.Contains(name, "//") {
			out = append(out, name)
		}
		return true
	})
	return out, err
}

func (l *Loader) inKernel(name string) (bool, error) {
	found := false
	err := l.profiles(func(n string) bool {
		found = n == name
		return !found
	})
	return found, err
}

// profiles calls f with the name of every profile the kernel holds, in
// the root namespace, until f returns false. Each line of the profiles
// file is "NAME (MODE)".
func (l *Loader) profiles(f func(name string) bool) error {
	fh, err := os.Open(filepath.Join(l.fs(), "profiles"))
	if err != nil {
		return fmt.Errorf("apparmor: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndex(line, " ("); i >= 0 {
			line = line[:i]
		}
		if !f(line) {
			return nil
		}
	}
	return sc.Err()
}

// writeFile writes a whole file through a temporary one, so that a
// reader never sees half a profile.
func writeFile(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ErrExecLabelUnseen is ExecLabel's error where the kernel does not show
// another process's pending exec label: up to at least Linux 6.1,
// AppArmor answers a read of /proc/PID/attr/apparmor/exec from the
// reader's own task context (apparmor_getprocattr's task_ctx(current)),
// so another process's pending label reads as EINVAL ("none") — or as
// the reader's own, when it has one pending. So the daemon cannot check
// the profile runc set on a container's waiting process (StartContainer
// relies on the runtime hook's reading of config.json instead).
var ErrExecLabelUnseen = errors.New("the kernel does not show another process's pending exec label (AppArmor reads the reader's own task context)")

// ExecLabel is the profile process pid is to run under at its next execve,
// its pending exec label; "" when none is set. For another process than
// the caller's, on kernels that do not show it, the error is
// ErrExecLabelUnseen (the kernel's EINVAL cannot tell "none pending" from
// "not shown").
func ExecLabel(proc string, pid int) (string, error) {
	l, err := label(proc, pid, "exec")
	if errors.Is(err, syscall.EINVAL) {
		if pid == os.Getpid() {
			return "", nil // the kernel's "nothing pending"
		}
		return "", fmt.Errorf("apparmor: the exec label of process %d: %w", pid, ErrExecLabelUnseen)
	}
	return l, err
}

// CurrentLabel is the profile process pid runs under ("unconfined" when
// none).
func CurrentLabel(proc string, pid int) (string, error) { return label(proc, pid, "current") }

func label(proc string, pid int, which string) (string, error) {
	var data []byte
	var err error
	for _, f := range []string{"attr/apparmor/" + which, "attr/" + which} {
		data, err = os.ReadFile(filepath.Join(proc, fmt.Sprint(pid), f))
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("apparmor: the %s label of process %d: %w", which, pid, err)
	}
	label := strings.TrimRight(string(data), "\x00\n")
	// "NAME (MODE)", as the kernel prints a label with its mode.
	if i := strings.LastIndex(label, " ("); i >= 0 && strings.HasSuffix(label, ")") {
		label = label[:i]
	}
	return label, nil
}
