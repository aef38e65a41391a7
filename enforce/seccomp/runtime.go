package seccomp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
)

// Runtime is the container runtime the plugin is connected to, as NRI's
// Configure tells it.
type Runtime struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// NRIVersion is the NRI version the runtime embeds, as it said (NRI
	// v0.12 and later) or as the stub inferred from Name and Version.
	NRIVersion string `json:"nriVersion"`
}

func (r Runtime) String() string {
	return fmt.Sprintf("%s %s (NRI %s)", r.Name, r.Version, r.NRIVersion)
}

// Route is how a container's syscall rules reach its seccomp filter.
type Route string

const (
	// RouteMerge: the runtime shows the container's seccomp policy
	// (containerd 2.3.0 and later): the rules are merged into it and the
	// whole is set through NRI.
	RouteMerge Route = "merge"
	// RouteLocalhost: the runtime does not show the container's seccomp
	// policy (CRI-O, containerd before 2.3): nothing is set through NRI;
	// the agent writes the runtime's default profile with the rules merged
	// in as a Localhost profile under the kubelet's seccomp root
	// (localhost.go), the pod names it (the pod webhook), and the start
	// gate checks that the bundle's filter is it. containerd 2.2.1 to
	// 2.2.x also take, for an Unconfined container whose pod names no such
	// profile, a default-allow policy with the rules through NRI
	// (Support.UnconfinedNRI).
	RouteLocalhost Route = "localhost"
	// RouteNone: nri-armor cannot put the rules in this runtime's
	// containers' filters (no seccomp adjustment in its NRI, or it never
	// shows what the container has, so setting a policy would replace the
	// runtime's default with nri-armor's guess of it).
	RouteNone Route = "none"
)

// Support is what a runtime allows for seccomp, decided by Table.
type Support struct {
	Runtime Runtime `json:"runtime"`
	Route   Route   `json:"route"`
	// ErrnoRetCrash: the runtime's NRI (v0.11.x) dereferences a nil
	// pointer converting a rule that carries ErrnoRet, which crashes the
	// runtime; no policy with one may be sent (fixed in NRI v0.12.0).
	ErrnoRetCrash bool `json:"errnoRetCrashes,omitempty"`
	// Format is the language of the Localhost profiles this runtime reads
	// (RouteLocalhost; the merge route also writes them for pods that name
	// one).
	Format Format `json:"format,omitempty"`
	// UnconfinedNRI: the runtime shows a container's seccomp profile type
	// (containerd 2.2.1 to 2.2.x), so an Unconfined container whose pod
	// names no Localhost profile of nri-armor's can take a default-allow
	// policy with the rules through NRI.
	UnconfinedNRI bool `json:"unconfinedNRI,omitempty"`
	// Reason says why, for RouteNone and RouteLocalhost.
	Reason string `json:"reason,omitempty"`
}

// Table decides, from the runtime's name, version and NRI version, how
// syscall rules reach its containers. The facts, read in the runtimes'
// sources (docs/seccomp.md lists them with the versions checked):
//
//   - NRI v0.10.0 added the seccomp policy adjustment; a runtime with an
//     older NRI drops the field it does not know, silently.
//   - NRI v0.11.x crashes the runtime on a rule with ErrnoRet (containerd
//     2.2.1–2.2.7, CRI-O 1.35–1.36).
//   - containerd shows plugins the container's seccomp profile type from
//     2.2.1 and its policy from 2.3.0. CRI-O shows neither, in any version.
//   - Both read a Localhost profile named in the container's CRI config
//     while they build its spec, before NRI's CreateContainer: containerd
//     as runtime-spec's LinuxSeccomp, CRI-O as containers/common's profile.
//     That route sends nothing through NRI, so it needs no NRI version.
func Table(rt Runtime) Support {
	s := Support{Runtime: rt, Route: RouteNone}
	nri, nriOK := parseVersion(rt.NRIVersion)
	if !nriOK {
		if inferred, err := api.InferVersionFromRuntime(rt.Name, rt.Version); err == nil {
			nri, nriOK = parseVersion(inferred)
		}
	}
	s.ErrnoRetCrash = nriOK && nri.major == 0 && nri.minor == 11
	if !nriOK {
		// Unknown NRI: assume the crash rather than crash a runtime.
		s.ErrnoRetCrash = true
	}
	ver, verOK := parseVersion(rt.Version)
	if rt.Name == "containerd" && verOK && !ver.less(version{2, 3, 0}) {
		// containerd 2.3.0 vendors NRI v0.12.0 (its go.mod) and no later
		// release goes back. The version it reports says so, but where it
		// reports none NRI's stub infers one from its own table, whose last
		// containerd entry is 2.2.1 (NRI v0.11.0): every newer containerd
		// would be taken for a crashing one.
		s.ErrnoRetCrash = false
		if nriOK && nri.less(version{0, 12, 0}) {
			nri = version{0, 12, 0}
		}
	}
	const localhost = ": syscall rules reach its containers through a Localhost seccomp profile nri-armor writes under the kubelet's seccomp root (the runtime's default with the rules merged in), which the pod must name (nri-armor's pod webhook does)"
	switch {
	case rt.Name == "containerd" && verOK && !ver.less(version{2, 3, 0}):
		s.Route, s.Format = RouteMerge, FormatOCI
	case rt.Name == "containerd" && verOK && !ver.less(version{2, 2, 1}):
		s.Route, s.Format, s.UnconfinedNRI = RouteLocalhost, FormatOCI, !(nriOK && nri.less(version{0, 10, 0}))
		s.Reason = fmt.Sprintf("containerd %s shows plugins a container's seccomp profile type but not its policy (from 2.3.0)%s; an Unconfined container whose pod names none gets a default-allow policy with the rules through NRI", rt.Version, localhost)
	case rt.Name == "containerd" && verOK:
		s.Route, s.Format = RouteLocalhost, FormatOCI
		s.Reason = fmt.Sprintf("containerd %s shows plugins neither a container's seccomp profile nor its policy (the type from 2.2.1, the policy from 2.3.0)%s", rt.Version, localhost)
	case rt.Name == "cri-o":
		s.Route, s.Format = RouteLocalhost, FormatContainers
		s.Reason = "CRI-O never shows plugins a container's seccomp profile or policy" + localhost
	default:
		s.Reason = fmt.Sprintf("runtime %q version %q: not in nri-armor's table (neither how it shows a container's seccomp policy nor how it reads a Localhost profile is known)", rt.Name, rt.Version)
	}
	return s
}

// version is a release number; pre-release and build suffixes are ignored.
type version struct{ major, minor, patch int }

func (v version) less(o version) bool {
	if v.major != o.major {
		return v.major < o.major
	}
	if v.minor != o.minor {
		return v.minor < o.minor
	}
	return v.patch < o.patch
}

// parseVersion reads "v2.4.2", "1.36.3", "2.2.0-rc.1", "v0.12.3+dirty".
func parseVersion(s string) (version, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+ ~"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return version{}, false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return version{}, false
		}
		n[i] = x
	}
	return version{n[0], n[1], n[2]}, true
}
