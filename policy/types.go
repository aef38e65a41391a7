package policy

// APIVersion is the only apiVersion of the three KubeArmor kinds.
const APIVersion = "security.kubearmor.com/v1"

// Kind is one of the three KubeArmor policy kinds.
type Kind string

// The policy kinds nri-armor reads.
const (
	KindPolicy        Kind = "KubeArmorPolicy"        // ksp: namespaced, selects pods
	KindClusterPolicy Kind = "KubeArmorClusterPolicy" // csp: selects namespaces and pods
	KindHostPolicy    Kind = "KubeArmorHostPolicy"    // hsp: the node itself
)

// Action is what a rule does when it matches.
type Action string

// The three actions. The empty action means Block once inheritance is done.
const (
	Allow Action = "Allow"
	Audit Action = "Audit"
	Block Action = "Block"
)

// Policy is one KubeArmor document of any of the three kinds.
type Policy struct {
	APIVersion string   `yaml:"apiVersion,required"`
	Kind       Kind     `yaml:"kind,required"`
	Metadata   Metadata `yaml:"metadata,required"`
	Spec       Spec     `yaml:"spec,required"`
	// Status is written by the Kubernetes controller; accepted and ignored so
	// that `kubectl get -o yaml` output loads.
	Status Ignored `yaml:"status"`

	// Source is where the document was read from; not part of the YAML.
	Source Source `yaml:"-"`
	// Digest is the sha256 of the document's canonical JSON form: two copies
	// of the same policy, however formatted, have the same digest.
	Digest string `yaml:"-"`
	// AppArmorSource locates spec.apparmor in the file, for the errors of
	// the profile it is placed in (enforce/apparmor).
	AppArmorSource TextSource `yaml:"-"`
	// ref caches Ref, set by the loader.
	ref string
}

// Source locates a document: file name and the line its document starts on.
type Source struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// Metadata is the part of Kubernetes' ObjectMeta that matters here. The
// fields a cluster adds on its own are accepted and ignored: every field
// of ObjectMeta is here (k8s/api/v1's TestFieldsMatchPolicy), because the
// agent loads an API object's JSON as it is — an object being deleted
// carries deletionGracePeriodSeconds.
type Metadata struct {
	Name        string            `yaml:"name,required"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`

	GenerateName               Ignored `yaml:"generateName"`
	SelfLink                   Ignored `yaml:"selfLink"`
	UID                        Ignored `yaml:"uid"`
	ResourceVersion            Ignored `yaml:"resourceVersion"`
	Generation                 Ignored `yaml:"generation"`
	CreationTimestamp          Ignored `yaml:"creationTimestamp"`
	DeletionTimestamp          Ignored `yaml:"deletionTimestamp"`
	DeletionGracePeriodSeconds Ignored `yaml:"deletionGracePeriodSeconds"`
	Finalizers                 Ignored `yaml:"finalizers"`
	ManagedFields              Ignored `yaml:"managedFields"`
	OwnerReferences            Ignored `yaml:"ownerReferences"`
}

// Ignored is a field accepted in any form and kept in none: what the API
// server adds to an object and the agent never reads. It takes no memory,
// where an interface of nothing would take 16 bytes (with 10,000 policies
// from the API server, 2 MiB).
type Ignored struct{}

// Provenance is what every section and rule may carry and inherit
// (rule, else section, else spec).
type Provenance struct {
	Severity Severity `yaml:"severity"`
	Tags     []string `yaml:"tags"`
	Message  string   `yaml:"message"`
	Action   Action   `yaml:"action"`
}

// Severity is 1–10; 0 means unset (inherit).
type Severity int

// Spec is the union of the three kinds' specs; validate.go rejects the
// fields a kind does not have (nodeSelector on a ksp, selector on an hsp …).
type Spec struct {
	Selector     *Selector     `yaml:"selector"`
	NodeSelector *NodeSelector `yaml:"nodeSelector"`

	Process      *ProcessSection      `yaml:"process"`
	File         *FileSection         `yaml:"file"`
	Network      *NetworkSection      `yaml:"network"`
	Capabilities *CapabilitiesSection `yaml:"capabilities"`
	Syscalls     *SyscallsSection     `yaml:"syscalls"`
	Presets      []Preset             `yaml:"presets"`
	// AppArmor is KubeArmor's raw AppArmor rules: placed in the container's
	// profile by the AppArmor backend, once they parse on their own.
	AppArmor   string `yaml:"apparmor"`
	Provenance `yaml:",inline"`
}

// Selector selects pods (ksp) or namespaces and pods (csp).
type Selector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []Expression      `yaml:"matchExpressions"`
}

// Expression is one matchExpressions entry: key `label` (values "k=v") or,
// in a csp, `namespace`.
type Expression struct {
	Key      string   `yaml:"key,required"`
	Operator string   `yaml:"operator,required"`
	Values   []string `yaml:"values"`
}

// NodeSelector selects nodes for a host policy.
type NodeSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// Preset names one of KubeArmor's built-in rule bundles.
type Preset struct {
	Name   string `yaml:"name,required"`
	Action Action `yaml:"action"`
}

// SourceMatch is a fromSource entry: the acting process's executable.
type SourceMatch struct {
	Path string `yaml:"path,required"`
}

// ProcessSection holds process (exec) rules.
type ProcessSection struct {
	MatchPaths       []ProcessPath      `yaml:"matchPaths"`
	MatchDirectories []ProcessDirectory `yaml:"matchDirectories"`
	MatchPatterns    []ProcessPattern   `yaml:"matchPatterns"`
	Provenance       `yaml:",inline"`
}

// ProcessPath matches an executable by path or by name.
type ProcessPath struct {
	Path       string        `yaml:"path"`
	ExecName   string        `yaml:"execname"`
	OwnerOnly  bool          `yaml:"ownerOnly"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// ProcessDirectory matches executables in a directory.
type ProcessDirectory struct {
	Dir        string        `yaml:"dir,required"`
	Recursive  bool          `yaml:"recursive"`
	OwnerOnly  bool          `yaml:"ownerOnly"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// ProcessPattern matches executables by glob.
type ProcessPattern struct {
	Pattern    string `yaml:"pattern,required"`
	OwnerOnly  bool   `yaml:"ownerOnly"`
	Provenance `yaml:",inline"`
}

// FileSection holds file access rules.
type FileSection struct {
	MatchPaths       []FilePath      `yaml:"matchPaths"`
	MatchDirectories []FileDirectory `yaml:"matchDirectories"`
	MatchPatterns    []FilePattern   `yaml:"matchPatterns"`
	Provenance       `yaml:",inline"`
}

// FilePath matches one file.
type FilePath struct {
	Path       string        `yaml:"path,required"`
	ReadOnly   bool          `yaml:"readOnly"`
	OwnerOnly  bool          `yaml:"ownerOnly"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// FileDirectory matches the files of a directory (or its whole subtree).
type FileDirectory struct {
	Dir        string        `yaml:"dir,required"`
	Recursive  bool          `yaml:"recursive"`
	ReadOnly   bool          `yaml:"readOnly"`
	OwnerOnly  bool          `yaml:"ownerOnly"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// FilePattern matches files by glob.
type FilePattern struct {
	Pattern    string `yaml:"pattern,required"`
	ReadOnly   bool   `yaml:"readOnly"`
	OwnerOnly  bool   `yaml:"ownerOnly"`
	Provenance `yaml:",inline"`
}

// NetworkSection holds socket rules.
type NetworkSection struct {
	MatchProtocols []ProtocolMatch `yaml:"matchProtocols"`
	Provenance     `yaml:",inline"`
}

// ProtocolMatch matches sockets by protocol or type; "tcp,udp" lists several.
type ProtocolMatch struct {
	Protocol   string        `yaml:"protocol,required"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// CapabilitiesSection holds capability rules.
type CapabilitiesSection struct {
	MatchCapabilities []CapabilityMatch `yaml:"matchCapabilities"`
	Provenance        `yaml:",inline"`
}

// CapabilityMatch matches one capability, `net_raw` or `CAP_NET_RAW`.
type CapabilityMatch struct {
	Capability string        `yaml:"capability,required"`
	FromSource []SourceMatch `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// SyscallsSection holds syscall rules.
type SyscallsSection struct {
	MatchSyscalls []SyscallMatch     `yaml:"matchSyscalls"`
	MatchPaths    []SyscallPathMatch `yaml:"matchPaths"`
	Provenance    `yaml:",inline"`
}

// SyscallSource is a syscall rule's fromSource: an executable or a directory of them.
type SyscallSource struct {
	Path      string `yaml:"path"`
	Dir       string `yaml:"dir"`
	Recursive bool   `yaml:"recursive"`
}

// SyscallMatch matches system calls by name.
type SyscallMatch struct {
	Syscall    []string        `yaml:"syscall,required"`
	FromSource []SyscallSource `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}

// SyscallPathMatch matches system calls on a path (file, or directory ending in /).
type SyscallPathMatch struct {
	Path       string          `yaml:"path,required"`
	Recursive  bool            `yaml:"recursive"`
	Syscall    []string        `yaml:"syscall,required"`
	FromSource []SyscallSource `yaml:"fromSource"`
	Provenance `yaml:",inline"`
}
