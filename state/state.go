package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nri-armor/nri-armor/policy"
)

// Version is the format's version, the name of its directory.
const Version = 1

// DefaultRoot is where nri-armor publishes by default.
const DefaultRoot = "/run/nri-armor/state"

// Container is one container as the tracer needs it.
type Container struct {
	CgroupID      uint64            `json:"cgroupId"`
	ContainerID   string            `json:"containerId"`
	ContainerName string            `json:"containerName"`
	PodName       string            `json:"podName"`
	PodNamespace  string            `json:"podNamespace"`
	PodUID        string            `json:"podUid,omitempty"`
	PodLabels     map[string]string `json:"podLabels,omitempty"`
	Image         string            `json:"image,omitempty"`
	// PolicySet is the digest of the container's rule set, "" when none.
	PolicySet string `json:"policySet,omitempty"`
	// Mode is the container's mode (enforce, audit).
	Mode policy.Mode `json:"mode,omitempty"`
	// Visibility is what the tracer reports as ContainerLog.
	Visibility policy.Visibility `json:"visibility"`
	// Enforcers names, per class, what enforces it for this container
	// ("BPFLSM", "CgroupBPF", ...); a class missing here is audited only.
	Enforcers map[policy.Class]string `json:"enforcers,omitempty"`
	// Unenforced are the ids of the set's rules that its enforcer does not
	// enforce in the kernel (e.g. a pattern it cannot match): only the
	// tracer sees those, in user space, so their alerts are audit only.
	Unenforced []int `json:"unenforced,omitempty"`
	// Ignored are the pod's annotations that were not honoured because
	// they would have weakened protection in a namespace that may not.
	Ignored []policy.IgnoredAnnotation `json:"ignoredAnnotations,omitempty"`
	Updated time.Time                  `json:"updated"`
}

// Host is the node's own processes: the host policy set applied to every
// process outside a container.
type Host struct {
	NodeName   string                  `json:"nodeName,omitempty"`
	NodeLabels map[string]string       `json:"nodeLabels,omitempty"`
	PolicySet  string                  `json:"policySet,omitempty"`
	Mode       policy.Mode             `json:"mode,omitempty"`
	Visibility policy.Visibility       `json:"visibility"`
	Enforcers  map[policy.Class]string `json:"enforcers,omitempty"`
	Unenforced []int                   `json:"unenforced,omitempty"`
	Updated    time.Time               `json:"updated"`
}

// Dir is a published state directory.
type Dir struct {
	root string
}

// Open returns the state under root ("" means DefaultRoot), creating its
// directories when create is true.
func Open(root string, create bool) (*Dir, error) {
	if root == "" {
		root = DefaultRoot
	}
	d := &Dir{root: root}
	if create {
		for _, sub := range []string{d.containersDir(), d.setsDir()} {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return nil, fmt.Errorf("state: %w", err)
			}
		}
	}
	return d, nil
}

// Root is the directory's root.
func (d *Dir) Root() string { return d.root }

func (d *Dir) base() string          { return filepath.Join(d.root, "v"+strconv.Itoa(Version)) }
func (d *Dir) containersDir() string { return filepath.Join(d.base(), "containers") }
func (d *Dir) setsDir() string       { return filepath.Join(d.base(), "sets") }
func (d *Dir) hostFile() string      { return filepath.Join(d.base(), "host.json") }

func (d *Dir) containerFile(cg uint64) string {
	return filepath.Join(d.containersDir(), strconv.FormatUint(cg, 10)+".json")
}

func (d *Dir) setFile(digest string) string {
	return filepath.Join(d.setsDir(), strings.TrimPrefix(digest, "sha256:")+".json")
}

// PutContainer publishes c under its cgroup id.
func (d *Dir) PutContainer(c Container) error {
	if c.CgroupID == 0 {
		return errors.New("state: container without cgroup id")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return writeAtomic(d.containerFile(c.CgroupID), b)
}

// DeleteContainer removes the container of cgroup cg; a missing one is fine.
func (d *Dir) DeleteContainer(cg uint64) error {
	if err := os.Remove(d.containerFile(cg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Container reads the container of cgroup cg; fs.ErrNotExist when none.
func (d *Dir) Container(cg uint64) (Container, error) {
	var c Container
	err := readJSON(d.containerFile(cg), &c)
	return c, err
}

// Containers reads every published container.
func (d *Dir) Containers() ([]Container, error) {
	ents, err := os.ReadDir(d.containersDir())
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []Container
	for _, e := range ents {
		cg, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".json"), 10, 64)
		if err != nil || !strings.HasSuffix(e.Name(), ".json") {
			continue // a temp file, or not ours
		}
		c, err := d.Container(cg)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// PutSet publishes rs under its digest; a set already there is kept (the
// digest names the content).
func (d *Dir) PutSet(rs *policy.RuleSet) error {
	f := d.setFile(rs.Digest)
	if _, err := os.Stat(f); err == nil {
		now := time.Now()
		return os.Chtimes(f, now, now) // in use again: restart its grace period
	}
	return writeAtomic(f, rs.JSON())
}

// Set reads the set of digest; fs.ErrNotExist when none.
func (d *Dir) Set(digest string) (*policy.RuleSet, error) {
	b, err := os.ReadFile(d.setFile(digest))
	if err != nil {
		return nil, err
	}
	rs, err := policy.ParseRuleSet(b)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", d.setFile(digest), err)
	}
	return rs, nil
}

// PruneSets removes set files that no digest in inUse names and that were
// last published more than grace ago.
func (d *Dir) PruneSets(inUse map[string]bool, grace time.Duration) error {
	ents, err := os.ReadDir(d.setsDir())
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || inUse["sha256:"+strings.TrimSuffix(name, ".json")] {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > grace {
			_ = os.Remove(filepath.Join(d.setsDir(), name))
		}
	}
	return nil
}

// PutHost publishes the node's own record.
func (d *Dir) PutHost(h Host) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return writeAtomic(d.hostFile(), b)
}

// Host reads the node's own record; fs.ErrNotExist when none.
func (d *Dir) Host() (Host, error) {
	var h Host
	err := readJSON(d.hostFile(), &h)
	return h, err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("state: %s: %w", path, err)
	}
	return nil
}

// writeAtomic writes b to path so that a reader sees the old content or
// the new, never a part.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
