package ocihook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The guard: the same hook, run by the runtime for every container (a base
// OCI spec, config/containerd-base-spec.json, not an NRI adjustment), so
// that it also runs for the containers nri-armor never saw. Its target is
// the pod carrying nri-armor.dev/tolerate-missing: containerd's NRI
// validator honours that annotation while nri-armor is down, in any
// namespace, and nri-armor cannot refuse what it does not see. The guard
// refuses the start instead, unless the node trusts the pod's namespace
// (the daemon's weakenNamespaces, as last written to the trust file, and
// the bootstrap list of the hook's arguments). See docs/fail-closed.md.

// Annotations containerd's CRI sets in every container's OCI spec (and a
// pod cannot set: CRI passes pod annotations through only when the runtime
// is configured to).
const (
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
)

// What CRI-O (checked in 1.36.3, internal/factory/container) sets in every
// container's OCI spec instead. CRI-O copies the pod's annotations into the
// spec first and sets its own after them, so a pod cannot override these
// (the container config's annotations and labels, which come last, are the
// kubelet's); but a pod can set containerd's keys above: on a spec CRI-O
// made (AnnotationContainerManager), only CRI-O's own keys are read. CRI-O
// has no namespace annotation of its own on a container (the pod's could
// be forged): the namespace is read from the container name CRI-O makes,
// k8s_CONTAINER_POD_NAMESPACE_UID_ATTEMPT (none of which may contain "_"
// in Kubernetes; a name that does not split in six is refused).
const (
	AnnotationContainerManager = "io.container.manager"
	ContainerManagerCRIO       = "cri-o"
	AnnotationCRIOName         = "io.kubernetes.cri-o.Name"
	AnnotationCRIOType         = "io.kubernetes.cri-o.ContainerType"
)

// The runtimes the guard knows (GuardConfig.Runtime, the hook's -runtime).
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
)

// podOf is the container's pod namespace ("" when the spec names none)
// and whether it is a pod's sandbox (pause) container, and which
// annotation named the namespace (for the refusal's message), on runtime
// (RuntimeContainerd, RuntimeCRIO, or "": told by the spec's
// AnnotationContainerManager). Told, it never reads the other runtime's
// keys: a containerd configured to pass a pod's annotations through
// (pod_annotations) would otherwise let the pod claim to be CRI-O's.
func podOf(ann map[string]string, runtime string) (ns string, sandbox bool, from string) {
	if runtime == RuntimeCRIO || (runtime == "" && ann[AnnotationContainerManager] == ContainerManagerCRIO) {
		if ann[AnnotationCRIOType] == "sandbox" {
			return "", true, AnnotationCRIOName
		}
		if f := strings.Split(ann[AnnotationCRIOName], "_"); len(f) == 6 && f[0] == "k8s" {
			return f[3], false, AnnotationCRIOName
		}
		return "", false, AnnotationCRIOName
	}
	return ann[AnnotationSandboxNamespace], ann[AnnotationContainerType] == "sandbox", AnnotationSandboxNamespace
}

// TrustFileName is the trust file's name, beside the installed hook.
const TrustFileName = "trusted-namespaces.json"

// TrustFile is where the daemon writes the trust file for a hook installed
// at binary.
func TrustFile(binary string) string {
	return filepath.Join(filepath.Dir(binary), TrustFileName)
}

// Trust is the trust file: the node's weakenNamespaces, written by the
// daemon whenever it starts, read by the guard when the daemon is down.
type Trust struct {
	WeakenNamespaces []string `json:"weakenNamespaces"`
}

// WriteTrust writes the trust file at path (atomically, mode 0644: the
// hook runs as root anyway, and the list is no secret).
func WriteTrust(path string, namespaces []string) error {
	data, err := json.Marshal(Trust{WeakenNamespaces: append([]string{}, namespaces...)})
	if err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("trust file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("trust file: %w", err)
	}
	return nil
}

// readTrust reads the trust file. A missing file is no namespace (the
// daemon never ran on this node: the bootstrap list alone); anything else
// that cannot be read is an error, which refuses the start.
func readTrust(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust file %s: %w", path, err)
	}
	var tr Trust
	if err := json.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("trust file %s: %w (want {\"weakenNamespaces\": [\"ns\", ...]})", path, err)
	}
	if i := slices.Index(tr.WeakenNamespaces, ""); i >= 0 {
		return nil, fmt.Errorf("trust file %s: weakenNamespaces[%d] is empty", path, i)
	}
	return tr.WeakenNamespaces, nil
}

// GuardConfig is the guard's arguments.
type GuardConfig struct {
	Socket  string
	Timeout time.Duration
	// TrustFile is the daemon's trust file (TrustFile of the installed hook).
	TrustFile string
	// Bootstrap are namespaces trusted whatever the trust file says:
	// nri-armor's own, whose pod must start before the daemon ever wrote
	// the file.
	Bootstrap []string
	// Runtime is the runtime that runs the guard (RuntimeContainerd or
	// RuntimeCRIO; config/ names it), whose annotations alone are read;
	// "" tells it by the spec (a guard installed before -runtime existed).
	Runtime string
}

// Guard is the guard's side of the hook: the daemon, when it answers,
// decides (as Hook, and for a container it does not know, by namespace);
// when it does not, the container starts only in a trusted namespace.
func Guard(stdin io.Reader, cfg GuardConfig) error {
	st, err := readState(stdin)
	if err != nil {
		return err
	}
	spec, file, err := readSpec(st.Bundle)
	if err != nil {
		return fmt.Errorf("nri-armor hook: container %s: %w", st.ID, err)
	}
	// A pod's sandbox (pause) container: its image is the node's, not the
	// pod author's, and NRI's validator does not gate it either.
	// (containerd 2.4.2 does not apply the base spec to it anyway.)
	ns, sandbox, from := podOf(spec.Annotations, cfg.Runtime)
	if sandbox {
		return nil
	}
	req := spec.request(st, nil)
	req.Guard, req.Namespace = true, ns
	down, err := ask(cfg.Socket, cfg.Timeout, req)
	if down == nil {
		return err
	}
	return trusted(st.ID, ns, from, file, down, cfg)
}

// trusted decides while the daemon is down (why: down): nil when the node
// trusts namespace ns.
func trusted(id, ns, from, file string, down error, cfg GuardConfig) error {
	if ns == "" {
		return fmt.Errorf("nri-armor hook: container %s: %v, and %s names no pod namespace (annotation %s): refusing to start it", id, down, file, from)
	}
	if slices.Contains(cfg.Bootstrap, ns) {
		return nil
	}
	names, err := readTrust(cfg.TrustFile)
	if err != nil {
		return fmt.Errorf("nri-armor hook: container %s of namespace %q: %v, and %w: refusing to start it", id, ns, down, err)
	}
	if slices.Contains(names, ns) {
		return nil
	}
	return fmt.Errorf("nri-armor hook: container %s of namespace %q: %v, and the node does not trust namespace %q to start containers without it (weakenNamespaces in %s, or the hook's -trusted): refusing to start it", id, ns, down, ns, cfg.TrustFile)
}
