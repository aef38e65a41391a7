package seccomp

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	cdseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	pcseccomp "go.podman.io/common/pkg/seccomp"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/policy"
)

// The Localhost route (RouteLocalhost): where a runtime cannot take a
// merged policy through NRI (CRI-O, containerd before 2.3), the agent
// writes a seccomp profile file per pod container under the kubelet's
// seccomp root — the runtime's own default profile with the rules merged
// in — and the pod names it (securityContext.seccompProfile {type:
// Localhost, localhostProfile: nri-armor/NAME.json}, set by the pod
// webhook). The runtime reads it while it builds the container's spec,
// before NRI's CreateContainer, so the file is written at RunPodSandbox.

const (
	// DefaultProfileRoot is the kubelet's seccomp root by default
	// (--root-dir /var/lib/kubelet): a pod's localhostProfile is a path
	// under it.
	DefaultProfileRoot = "/var/lib/kubelet/seccomp"
	// ProfileDir is the folder under the seccomp root that holds
	// nri-armor's profiles, and starts every localhostProfile it names.
	ProfileDir = "nri-armor"
	// ProfileAnnotation prefixes the pod annotation that names a
	// container's profile (the localhostProfile, "nri-armor/NAME.json"):
	// the runtime shows the agent a pod's annotations at RunPodSandbox,
	// never its containers' security contexts. The webhook writes it
	// beside the field.
	ProfileAnnotation = "seccomp.nri-armor.dev/"
)

// Base is what a profile's rules are merged into.
type Base string

const (
	// BaseDefault: the runtime's default profile (RuntimeDefault, and a
	// container that asks for none).
	BaseDefault Base = "default"
	// BaseUnconfined: nothing (a container that asks for Unconfined): a
	// default-allow profile with the rules.
	BaseUnconfined Base = "unconfined"
)

// Format is the language of a profile file, the one its runtime reads.
type Format string

const (
	// FormatOCI: runtime-spec's LinuxSeccomp, which containerd reads as it
	// is (contrib/seccomp.WithProfile) and puts in the spec unchanged.
	FormatOCI Format = "oci"
	// FormatContainers: containers/common's profile (Docker's), which
	// CRI-O reads, resolving each rule's includes and excludes
	// (capabilities, architectures) for the container.
	FormatContainers Format = "containers"
)

// ProfileName is the localhostProfile of container c of pod, relative to
// the kubelet's seccomp root: derived from what chooses the container's
// rule set (its namespace, name, labels and policy annotations, as
// apparmor.ProfileName), not from the rules, so that the webhook, which
// does not know the node, and the agent compute the same name, and a
// container created again after a policy edit finds its file rewritten.
func ProfileName(pod policy.Pod, c string, base Base) string {
	n := ProfileDir + "/" + apparmor.ProfileName(pod, c)
	if base == BaseUnconfined {
		n += ".unconfined"
	}
	return n + ".json"
}

// ParseProfileName says whether name is one of nri-armor's profiles, and
// on which base.
func ParseProfileName(name string) (Base, bool) {
	rest, ok := strings.CutPrefix(name, ProfileDir+"/"+apparmor.NamePrefix)
	if !ok || !strings.HasSuffix(rest, ".json") || strings.Contains(rest, "/") {
		return "", false
	}
	if strings.HasSuffix(rest, ".unconfined.json") {
		return BaseUnconfined, true
	}
	return BaseDefault, true
}

// ProfilePath is where the runtime reads profile name under root: the
// localhost_ref the kubelet passes to the runtime.
func ProfilePath(root, name string) string {
	return path.Join(root, name)
}

// Profile is the file of a container whose filter does what plan asks,
// merged into base, in format f, for a node of Go architecture arch.
func Profile(f Format, plan Plan, arch string, base Base) ([]byte, error) {
	switch f {
	case FormatOCI:
		pol, err := LocalhostPolicy(plan, arch, base)
		if err != nil {
			return nil, err
		}
		return json.MarshalIndent(toOCI(pol), "", "  ")
	case FormatContainers:
		prof, err := containersProfile(plan, arch, base)
		if err != nil {
			return nil, err
		}
		return json.MarshalIndent(prof, "", "  ")
	}
	return nil, fmt.Errorf("seccomp profile format %q: unknown", f)
}

// LocalhostPolicy is the policy of a FormatOCI profile: containerd's
// default (contrib/seccomp, for a container with its default capability
// set) with plan merged in (Build), or a default-allow one. containerd
// puts it in the container's spec unchanged, so the start gate compares
// the bundle's with it.
func LocalhostPolicy(plan Plan, arch string, base Base) (*api.LinuxSeccomp, error) {
	if Arches(arch) == nil {
		return nil, fmt.Errorf("seccomp profile: architecture %q is not supported", arch)
	}
	var b *api.LinuxSeccomp
	if base != BaseUnconfined {
		b = ContainerdDefault()
	}
	return Build(plan, arch, b), nil
}

// ContainerdDefault is containerd's default profile for a container with
// containerd's default capabilities (oci.defaultUnixCaps). A container
// granted more capabilities gets those capabilities' calls refused (the
// profile is written before its spec exists): stricter, never looser.
func ContainerdDefault() *api.LinuxSeccomp {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	sp := &rspec.Spec{Process: &rspec.Process{Capabilities: &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}}
	return api.FromOCILinuxSeccomp(cdseccomp.DefaultProfile(sp))
}

func toOCI(pol *api.LinuxSeccomp) *rspec.LinuxSeccomp {
	o := &rspec.LinuxSeccomp{
		DefaultAction:    rspec.LinuxSeccompAction(pol.DefaultAction),
		ListenerPath:     pol.ListenerPath,
		ListenerMetadata: pol.ListenerMetadata,
		Syscalls:         api.ToOCILinuxSyscalls(pol.Syscalls),
	}
	if e := pol.DefaultErrno; e != nil {
		v := uint(e.Value)
		o.DefaultErrnoRet = &v
	}
	for _, a := range pol.Architectures {
		o.Architectures = append(o.Architectures, rspec.Arch(a))
	}
	for _, f := range pol.Flags {
		o.Flags = append(o.Flags, rspec.LinuxSeccompFlag(f))
	}
	return o
}

// CRIODefault is CRI-O's default profile (1.36: containers/common's, with
// clone, clone3 and unshare allowed only with CAP_SYS_ADMIN and clone
// refused the namespace flags without it, as CRI-O's
// internal/config/seccomp.DefaultProfile makes it).
func CRIODefault() (*pcseccomp.Seccomp, error) {
	prof := pcseccomp.DefaultProfile()
	moved := []string{"clone", "clone3", "unshare"}
	found := 0
	for _, s := range prof.Syscalls {
		if s.Action != pcseccomp.ActAllow || len(s.Args) > 0 || len(s.Includes.Caps)+len(s.Includes.Arches)+len(s.Excludes.Caps)+len(s.Excludes.Arches) > 0 {
			continue
		}
		n := len(s.Names)
		s.Names = slices.DeleteFunc(s.Names, func(x string) bool { return slices.Contains(moved, x) })
		found += n - len(s.Names)
	}
	if found != len(moved) {
		return nil, fmt.Errorf("containers/common's default seccomp profile changed: %d of %v found in its unconditional allow rules, where CRI-O expects each once", found, moved)
	}
	const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	var refuse []*pcseccomp.Arg
	for _, f := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP} {
		refuse = append(refuse, &pcseccomp.Arg{Index: 0, Value: f, ValueTwo: f, Op: pcseccomp.OpMaskedEqual})
	}
	prof.Syscalls = append(prof.Syscalls,
		&pcseccomp.Syscall{Names: moved, Action: pcseccomp.ActAllow, Includes: pcseccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		&pcseccomp.Syscall{Name: "clone", Action: pcseccomp.ActAllow, Args: []*pcseccomp.Arg{{Index: 0, Value: nsFlags, ValueTwo: 0, Op: pcseccomp.OpMaskedEqual}}},
		&pcseccomp.Syscall{Name: "clone", Action: pcseccomp.ActErrno, Errno: "EPERM", Args: refuse, Excludes: pcseccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		&pcseccomp.Syscall{Name: "clone3", Action: pcseccomp.ActErrno, Errno: "ENOSYS", Excludes: pcseccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
	)
	return prof, nil
}

// containersProfile merges plan into CRI-O's default (or into nothing) as
// Build does into an OCI policy, keeping each rule's includes and
// excludes: a blocked call leaves every rule that names it and is refused
// by one rule of its own, whatever its arguments and capabilities; an
// audited call the base allows is logged under the same conditions.
func containersProfile(plan Plan, arch string, base Base) (*pcseccomp.Seccomp, error) {
	arches := Arches(arch)
	if arches == nil {
		return nil, fmt.Errorf("seccomp profile: architecture %q is not supported", arch)
	}
	var prof *pcseccomp.Seccomp
	if base == BaseUnconfined {
		prof = &pcseccomp.Seccomp{DefaultAction: pcseccomp.ActAllow,
			ArchMap: []pcseccomp.Architecture{{Arch: pcseccomp.Arch(arches[0]), SubArches: []pcseccomp.Arch{}}}}
		for _, a := range arches[1:] {
			prof.ArchMap[0].SubArches = append(prof.ArchMap[0].SubArches, pcseccomp.Arch(a))
		}
	} else {
		var err error
		if prof, err = CRIODefault(); err != nil {
			return nil, err
		}
	}
	blocked := map[string]bool{}
	for _, n := range plan.Blocked {
		blocked[n] = true
	}
	logged := map[string]bool{}
	for _, n := range plan.Logged {
		if !blocked[n] {
			logged[n] = true
		}
	}
	named := map[string]bool{}
	var out []*pcseccomp.Syscall
	for _, s := range prof.Syscalls {
		names := slices.Clone(s.Names)
		if s.Name != "" {
			names = append([]string{s.Name}, names...)
		}
		var keep, log []string
		for _, n := range names {
			named[n] = true
			switch {
			case blocked[n]:
			case logged[n] && s.Action == pcseccomp.ActAllow:
				log = append(log, n)
			default:
				keep = append(keep, n)
			}
		}
		if len(keep) > 0 {
			c := *s
			c.Name, c.Names = "", keep
			out = append(out, &c)
		}
		if len(log) > 0 {
			c := *s
			c.Name, c.Names, c.Action = "", log, pcseccomp.ActLog
			out = append(out, &c)
		}
	}
	if prof.DefaultAction == pcseccomp.ActAllow {
		var log []string
		for _, n := range plan.Logged {
			if logged[n] && !named[n] {
				log = append(log, n)
			}
		}
		if len(log) > 0 {
			out = append(out, &pcseccomp.Syscall{Names: log, Action: pcseccomp.ActLog})
		}
	}
	if len(plan.Blocked) > 0 {
		out = append(out, &pcseccomp.Syscall{Names: slices.Clone(plan.Blocked), Action: pcseccomp.ActErrno, Errno: "EPERM",
			Comment: "nri-armor: syscall Block rules"})
	}
	prof.Syscalls = out
	if plan.LogRefusals && len(plan.Blocked) > 0 && !slices.Contains(prof.Flags, FlagLog) {
		prof.Flags = append(prof.Flags, FlagLog)
	}
	return prof, nil
}

// CRIOProfileAnnotation is the OCI annotation in which CRI-O records, in
// the container's spec, the seccomp profile it loaded: the Localhost
// profile's path, "RuntimeDefault", "Unconfined", or "" (an OCI artifact's
// profile).
const CRIOProfileAnnotation = "io.kubernetes.cri-o.SeccompProfilePath"

// Expected is what a container on the Localhost route must run with: the
// profile at Path, written in Format for Arch on Base, carrying Plan.
type Expected struct {
	Path   string
	Format Format
	Arch   string
	Base   Base
	Plan   Plan
}

// CheckBundle checks the seccomp section of a container's bundle (pol;
// nil for none) against e, the Localhost profile it must run with. ref is
// the profile the runtime says it loaded (CRI-O's annotation; "" where
// the runtime records none).
//
//   - FormatOCI (containerd): containerd copies the file into the spec
//     unchanged, so pol must be exactly the profile's policy; anything
//     else is another profile, Unconfined, or a change by another plugin.
//   - FormatContainers (CRI-O): CRI-O resolves the profile's conditions
//     for the container (its capabilities and architecture), so pol is not
//     the file; CRI-O's annotation must name the profile, and pol must
//     carry the plan (Carries: every blocked call refused whatever its
//     arguments, every audited one logged), with a filter for every
//     architecture the profile lists.
func CheckBundle(e Expected, pol *api.LinuxSeccomp, ref string) error {
	if pol == nil {
		return fmt.Errorf("it runs without a seccomp filter (Unconfined or privileged), not nri-armor's Localhost profile %s", e.Path)
	}
	switch e.Format {
	case FormatOCI:
		want, err := LocalhostPolicy(e.Plan, e.Arch, e.Base)
		if err != nil {
			return err
		}
		// Through the file's JSON, as containerd read it.
		b, err := json.Marshal(toOCI(want))
		if err != nil {
			return err
		}
		var o rspec.LinuxSeccomp
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if !proto.Equal(api.FromOCILinuxSeccomp(&o), pol) {
			if err := Carries(pol, e.Plan); err != nil {
				return fmt.Errorf("its seccomp filter is not nri-armor's Localhost profile %s: %w", e.Path, err)
			}
			return fmt.Errorf("its seccomp filter is not nri-armor's Localhost profile %s (another profile, or changed by another NRI plugin: the runtime default may not be in force)", e.Path)
		}
		return nil
	case FormatContainers:
		if ref != e.Path {
			return fmt.Errorf("the runtime loaded seccomp profile %q, not nri-armor's Localhost profile %s", ref, e.Path)
		}
		if err := Carries(pol, e.Plan); err != nil {
			return err
		}
		for _, a := range Arches(e.Arch) {
			if len(pol.Architectures) > 0 && !slices.Contains(pol.Architectures, a) {
				return fmt.Errorf("its seccomp filter does not cover architecture %s (it lists %v): calls made through it would escape nri-armor's rules or be killed", a, pol.Architectures)
			}
		}
		return nil
	}
	return fmt.Errorf("seccomp profile format %q: unknown", e.Format)
}
