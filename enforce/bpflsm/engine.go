package bpflsm

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/policy"
)

// Config sizes and places the kernel state. Capacities are configuration,
// not constants of the programs.
type Config struct {
	// PinPath is the bpffs folder for maps and links (default /sys/fs/bpf/nri-armor).
	PinPath string
	// MaxContainers bounds cgroups with a rule set, and distinct sets (default 16384).
	MaxContainers int
	// MaxRuleEntries bounds rule entries over all sets (default 262,144: a
	// 65,536-rule set, its replacement while it is swapped, and the rest);
	// the kernel allocates 16 bytes of buckets per entry up front.
	MaxRuleEntries int
	// MaxPatternEntries bounds pattern entries over all sets (default 65,536).
	MaxPatternEntries int
	// SetLinger keeps a set no cgroup uses any more loaded this long, so
	// that the next container with the same policies (a pod restarted, a
	// deployment scaled) finds it in the kernel instead of loading it again
	// (0: free at once). Lingering sets give way whenever their capacity is
	// needed; Reap frees those past their time.
	SetLinger time.Duration
	// RingBytes sizes the event ring buffer (default 4 MiB; a power of two).
	RingBytes int
	// WakeupBytes: the reader is woken once this much is pending (default 64 KiB).
	WakeupBytes int
	// ScratchSlots is how many decisions in progress at once each CPU has
	// memory for, 1 to 8 (default 4): a decision preempted halfway keeps
	// its slot, and past the slots a decision takes memory of its own
	// (bpf/enforce/match.h, struct scratch; ScratchStats counts it).
	ScratchSlots int
}

func (c *Config) defaults() {
	if c.PinPath == "" {
		c.PinPath = events.DefaultPinPath
	}
	if c.MaxContainers <= 0 {
		c.MaxContainers = 16384
	}
	if c.MaxRuleEntries <= 0 {
		c.MaxRuleEntries = 1 << 18
	}
	if c.MaxPatternEntries <= 0 {
		c.MaxPatternEntries = 1 << 16
	}
	if c.RingBytes <= 0 {
		c.RingBytes = 4 << 20
	}
	if c.WakeupBytes <= 0 {
		c.WakeupBytes = 64 << 10
	}
	if c.ScratchSlots <= 0 {
		c.ScratchSlots = defaultScratchSlots
	}
	if c.ScratchSlots > maxScratchSlots {
		c.ScratchSlots = maxScratchSlots
	}
	if c.WakeupBytes > c.RingBytes/4 {
		c.WakeupBytes = c.RingBytes / 4 // a multiple must fit in the ring to be crossed
	}
}

// Hook groups: which programs a node attaches is the probe's decision.
type Hooks int

// The program groups.
const (
	// HooksLSM are the BPF-LSM programs: process, file, network, capabilities.
	HooksLSM Hooks = 1 << iota
	// HooksCgroupNet are the cgroup-BPF network programs, for nodes without BPF-LSM.
	HooksCgroupNet
)

// Engine owns nri-armor's kernel state: the pinned maps, the attached
// programs and the rule sets loaded into the maps. Sets are shared: each
// distinct set (by digest) is written once and cgroups point at it.
type Engine struct {
	cfg   Config
	coll  *ebpf.Collection
	maps  armorMaps
	names *ebpf.Map // set id → digest, so that a restarted engine knows its sets
	links []link.Link
	key   PathKey // the programs' path-hash key (pathKey)
	hooks Hooks
	// sysProg is armor_sys (syscalls.go), loaded and attached once per LSM
	// hook while a loaded set needs the hook (sysHooks, by hook name).
	sysProg  *ebpf.ProgramSpec
	sysHooks map[string]*sysAttach

	mu      sync.Mutex
	sets    map[string]*loadedSet // by digest
	byID    map[uint32]*loadedSet
	cgroups map[uint64]*loadedSet
	exempt  map[uint64]bool // containers without rules: outside the host set
	host    *loadedSet      // the node's own processes' set, nil when none
	nextID  uint32
}

type loadedSet struct {
	id         uint32
	digest     string
	keys       []armorRuleKey // its entries in the rules map
	sysKeys    []armorSysKey  // its entries in the sys_rules map
	hooksHeld  []string       // the armor_sys hooks it holds (Engine.sysHooks)
	patKeys    []armorRuleKey // its entries in the patterns map
	recovered  bool           // found in the pins at Open: unenforced not known yet
	header     armorSetHdr    // copied into each cgroup's entry
	refs       int
	idleSince  time.Time // when refs fell to 0 (the set lingers, SetLinger)
	unenforced []enforce.Unenforced
}

// OpenEngine loads (or re-opens, from the pins) the kernel state and attaches the
// programs of hooks. Re-opening reuses pinned maps, so the rule sets and the
// cgroup assignments of a previous run stay in force throughout.
func OpenEngine(cfg Config, hooks Hooks, cgroup2 string) (*Engine, error) {
	cfg.defaults()
	_ = rlimit.RemoveMemlock()
	if err := ensureBPFFS(filepath.Dir(cfg.PinPath)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.PinPath, "links"), 0o700); err != nil {
		return nil, fmt.Errorf("bpffs pin folder: %w", err)
	}
	spec, err := loadArmor()
	if err != nil {
		return nil, err
	}
	spec.Maps[armorMapCgSets].MaxEntries = uint32(cfg.MaxContainers)
	spec.Maps[armorMapRules].MaxEntries = uint32(cfg.MaxRuleEntries)
	spec.Maps[armorMapPatterns].MaxEntries = uint32(cfg.MaxPatternEntries)
	spec.Maps[armorMapEvents].MaxEntries = uint32(cfg.RingBytes)
	spec.Maps[armorMapScratch].MaxEntries = uint32(cfg.ScratchSlots)
	if err := spec.Variables[armorVarWakeupBytes].Set(uint64(cfg.WakeupBytes)); err != nil {
		return nil, err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting CPUs: %w", err)
	}
	if err := spec.Variables[armorVarNrCpus].Set(uint32(cpus)); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	if hooks&HooksLSM != 0 {
		for _, p := range lsmPrograms {
			want[p.name] = true
		}
	}
	if hooks&HooksCgroupNet != 0 {
		for _, p := range cgroupPrograms {
			want[p.name] = true
		}
	}
	var sysProg *ebpf.ProgramSpec
	if hooks&HooksLSM != 0 {
		sysProg = spec.Programs[armorProgArmorSys].Copy()
	}
	for name := range spec.Programs {
		if !want[name] {
			delete(spec.Programs, name)
		}
	}
	unneeded := withoutLSMStorage(spec)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.PinPath}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading BPF programs: %+v", ve)
		}
		return nil, fmt.Errorf("loading BPF programs: %w", err)
	}
	e := &Engine{cfg: cfg, coll: coll, sets: map[string]*loadedSet{}, byID: map[uint32]*loadedSet{}, cgroups: map[uint64]*loadedSet{}, exempt: map[uint64]bool{}, nextID: 1,
		hooks: hooks, sysProg: sysProg, sysHooks: map[string]*sysAttach{}}
	for _, name := range unneeded {
		// Assign wants every map of the objects: a stand-in no program
		// uses (closed with the collection).
		if coll.Maps[name], err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}); err != nil {
			coll.Close()
			return nil, fmt.Errorf("stand-in for map %s: %w", name, err)
		}
	}
	if err := coll.Assign(&e.maps); err != nil {
		coll.Close()
		return nil, err
	}
	e.names, err = ebpf.NewMapWithOptions(&ebpf.MapSpec{
		Name: events.SetNamesMap, Type: ebpf.Hash, KeySize: 4, ValueSize: events.DigestLen,
		MaxEntries: uint32(cfg.MaxContainers), Pinning: ebpf.PinByName,
	}, ebpf.MapOptions{PinPath: cfg.PinPath})
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("set names map: %w", err)
	}
	// The key before the sets: sets pinned without one (by a version of
	// the programs before it) were hashed otherwise, and are not reused.
	key, found, err := readPathKey(e.maps.PathKey)
	if err != nil {
		e.Close()
		return nil, err
	}
	if err := e.recover(!found); err != nil {
		e.Close()
		return nil, err
	}
	if !found {
		if key, err = newPathKey(e.maps.PathKey); err != nil {
			e.Close()
			return nil, err
		}
	}
	e.key = key
	if err := e.attach(hooks, cgroup2); err != nil {
		e.Close()
		return nil, err
	}
	// The syscall hooks the recovered sets hold; pins of others go.
	if err := e.recoverSysHooks(); err != nil {
		e.Close()
		return nil, err
	}
	// A previous run's memos may come from other programs or sets.
	if err := e.invalidateMemos(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// withoutLSMStorage removes from spec the inode storage maps that none of
// its programs uses, and returns their names. Inode storage lives in the
// BPF LSM's blob: where "bpf" is not among the active LSMs (the nodes the
// cgroup-BPF backend is for), the kernel refuses to create such a map
// (EOPNOTSUPP on Debian's 6.1), and only the LSM programs use it.
func withoutLSMStorage(spec *ebpf.CollectionSpec) []string {
	used := map[string]bool{}
	for _, p := range spec.Programs {
		for _, ins := range p.Instructions {
			if ref := ins.Reference(); ref != "" {
				used[ref] = true
			}
		}
	}
	var out []string
	for name, m := range spec.Maps {
		if m.Type == ebpf.InodeStorage && !used[name] {
			delete(spec.Maps, name)
			out = append(out, name)
		}
	}
	return out
}

// invalidateMemos makes every open memo stale by bumping the loader's half
// of memo_epoch. Writing the value back may also set the kernel's half to
// an older count; that cannot revive a memo, since every memo made before
// this write has the older loader half.
func (e *Engine) invalidateMemos() error {
	var ep armorMemoEpochs
	if err := e.maps.MemoEpoch.Lookup(uint32(0), &ep); err != nil {
		return fmt.Errorf("reading memo epoch: %w", err)
	}
	ep.E[1]++
	if err := e.maps.MemoEpoch.Update(uint32(0), &ep, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bumping memo epoch: %w", err)
	}
	return nil
}

type progAttach struct {
	name    string
	cgroup  ebpf.AttachType // 0 for LSM and tracing programs
	tracing bool            // a BTF tracepoint (tp_btf)
}

var lsmPrograms = []progAttach{
	// The open memo's invalidations come first (see bpf/enforce/memo.h); the
	// engine also invalidates every memo once all are attached.
	{name: armorProgArmorInodeRename}, {name: armorProgArmorSbMount}, {name: armorProgArmorMoveMount},
	{name: armorProgArmorSbUmount}, {name: armorProgArmorSbPivotroot},
	// The runtime's setup tasks are marked (bpf/enforce/setup.h) before
	// the hooks that exempt them exist.
	{name: armorProgArmorCgroupAttach, tracing: true}, {name: armorProgArmorProcessFork, tracing: true}, {name: armorProgArmorTaskFree},
	{name: armorProgArmorBprmCheck}, {name: armorProgArmorBprmCommitted}, {name: armorProgArmorTaskAlloc},
	{name: armorProgArmorFileOpen}, {name: armorProgArmorMmapFile}, {name: armorProgArmorInodeMkdir},
	{name: armorProgArmorPathUnlink}, {name: armorProgArmorPathRmdir}, {name: armorProgArmorPathMkdir},
	{name: armorProgArmorPathMknod}, {name: armorProgArmorPathSymlink}, {name: armorProgArmorPathLink},
	{name: armorProgArmorPathRename}, {name: armorProgArmorPathTruncate}, {name: armorProgArmorPathChmod},
	{name: armorProgArmorPathChown}, {name: armorProgArmorInodeSetxattr}, {name: armorProgArmorInodeRemovexattr},
	{name: armorProgArmorFileMprotect}, {name: armorProgArmorSocketCreate}, {name: armorProgArmorSocketConnect},
	{name: armorProgArmorCapable},
}

var cgroupPrograms = []progAttach{
	{name: armorProgArmorCgSockCreate, cgroup: ebpf.AttachCGroupInetSockCreate},
	{name: armorProgArmorCgConnect4, cgroup: ebpf.AttachCGroupInet4Connect},
	{name: armorProgArmorCgConnect6, cgroup: ebpf.AttachCGroupInet6Connect},
}

// attach links every loaded program, reusing pinned links: a cgroup link is
// updated in place (atomic); an LSM link whose program is unchanged is kept,
// and a changed one is replaced by attaching the new program before the old
// one is detached — there is no instant without enforcement.
func (e *Engine) attach(hooks Hooks, cgroup2 string) error {
	var progs []progAttach
	if hooks&HooksLSM != 0 {
		progs = append(progs, lsmPrograms...)
	}
	if hooks&HooksCgroupNet != 0 {
		if cgroup2 == "" {
			return errors.New("cgroup-BPF programs need the cgroup2 mount point")
		}
		progs = append(progs, cgroupPrograms...)
	}
	for _, p := range progs {
		prog := e.coll.Programs[p.name]
		pin := filepath.Join(e.cfg.PinPath, "links", p.name)
		old, err := link.LoadPinnedLink(pin, nil)
		if err == nil {
			if p.cgroup != 0 {
				if err := old.Update(prog); err != nil {
					old.Close()
					return fmt.Errorf("updating pinned link %s: %w", pin, err)
				}
				e.links = append(e.links, old)
				continue
			}
			if sameProgram(old, prog) {
				e.links = append(e.links, old)
				continue
			}
		}
		var l link.Link
		switch {
		case p.cgroup != 0:
			l, err = link.AttachCgroup(link.CgroupOptions{Path: cgroup2, Attach: p.cgroup, Program: prog})
		case p.tracing:
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		default:
			l, err = link.AttachLSM(link.LSMOptions{Program: prog})
		}
		if err != nil {
			if old != nil {
				old.Close()
			}
			return fmt.Errorf("attaching %s: %w", p.name, err)
		}
		if old != nil { // the new program is attached: now the old one may go
			_ = old.Unpin()
			old.Close()
		}
		if err := l.Pin(pin); err != nil {
			l.Close()
			return fmt.Errorf("pinning %s: %w", pin, err)
		}
		e.links = append(e.links, l)
	}
	return nil
}

// sameProgram compares the tag (a hash of the instructions) of a pinned
// link's program with a freshly loaded one.
func sameProgram(l link.Link, p *ebpf.Program) bool {
	li, err := l.Info()
	if err != nil {
		return false
	}
	old, err := ebpf.NewProgramFromID(li.Program)
	if err != nil {
		return false
	}
	defer old.Close()
	oi, err1 := old.Info()
	ni, err2 := p.Info()
	return err1 == nil && err2 == nil && oi.Tag == ni.Tag
}

// readPathKey reads the path-hash key from its pinned map; found is false
// when the map holds none (it is new: the first engine since boot, or
// since Unpin).
func readPathKey(m *ebpf.Map) (key PathKey, found bool, err error) {
	var v armorSipKey
	if err := m.Lookup(uint32(0), &v); err != nil {
		return PathKey{}, false, fmt.Errorf("reading the path key: %w", err)
	}
	key = PathKey{v.K0, v.K1}
	return key, key != PathKey{}, nil
}

// newPathKey draws a random key (crypto/rand) and writes it into its map,
// where the programs read it and the next engine finds it. It lives only
// there and in this process: a container has no way to read either.
func newPathKey(m *ebpf.Map) (PathKey, error) {
	var b [16]byte
	var key PathKey
	for key == (PathKey{}) { // zero stands for no key
		if _, err := rand.Read(b[:]); err != nil {
			return PathKey{}, fmt.Errorf("drawing the path key: %w", err)
		}
		key = PathKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
	}
	if err := m.Update(uint32(0), armorSipKey{K0: key.k0, K1: key.k1}, ebpf.UpdateAny); err != nil {
		return PathKey{}, fmt.Errorf("writing the path key: %w", err)
	}
	return key, nil
}

// recover rebuilds the engine's view of the sets from the pinned maps.
// With stale, the pinned sets were not hashed with the key the programs
// will use (they come from programs before the path key): they lose their
// names, so that neither this engine nor a later one shares them, and are
// replaced as the cgroups using them are applied again.
func (e *Engine) recover(stale bool) error {
	var id uint32
	var name [events.DigestLen]byte
	var unnamed []uint32
	add := func(id uint32) *loadedSet {
		s := &loadedSet{id: id, recovered: true}
		e.byID[id] = s
		if id >= e.nextID {
			e.nextID = id + 1
		}
		return s
	}
	it := e.names.Iterate()
	for it.Next(&id, &name) {
		s := add(id)
		if stale {
			unnamed = append(unnamed, id)
			continue
		}
		s.digest = "sha256:" + hex.EncodeToString(name[:])
		e.sets[s.digest] = s
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading pinned set names: %w", err)
	}
	for _, id := range unnamed {
		if err := e.names.Delete(id); err != nil {
			return fmt.Errorf("unnaming stale set %d: %w", id, err)
		}
	}
	// A set without a name (stale, or its naming failed) cannot be shared:
	// its cgroups keep it until they are applied again, then it is freed.
	set := func(id uint32) *loadedSet {
		if s := e.byID[id]; s != nil {
			return s
		}
		return add(id)
	}
	var cg uint64
	var v armorCgVal
	if err := e.maps.HostSet.Lookup(uint32(0), &v); err == nil && v.SetId != 0 {
		e.host = set(v.SetId)
		e.host.header = v.Hdr
		e.host.refs++
	}
	it = e.maps.CgSets.Iterate()
	for it.Next(&cg, &v) {
		if v.SetId == 0 {
			e.exempt[cg] = true
			continue
		}
		s := set(v.SetId)
		s.header = v.Hdr
		s.refs++
		e.cgroups[cg] = s
	}
	if err := it.Err(); err != nil {
		return err
	}
	// One scan of the rule maps gives every recovered set its keys, so that
	// freeing and counting work as for sets written by this process.
	var k armorRuleKey
	var rv armorRuleVal
	for it := e.maps.Rules.Iterate(); it.Next(&k, &rv); {
		if s := e.byID[k.SetId]; s != nil {
			s.keys = append(s.keys, k)
		}
	}
	var pv armorPatVal
	for it := e.maps.Patterns.Iterate(); it.Next(&k, &pv); {
		if s := e.byID[k.SetId]; s != nil {
			s.patKeys = append(s.patKeys, k)
		}
	}
	var sk armorSysKey
	var sv armorVerdict
	for it := e.maps.SysRules.Iterate(); it.Next(&sk, &sv); {
		if s := e.byID[sk.SetId]; s != nil {
			s.sysKeys = append(s.sysKeys, sk)
		}
	}
	// Sets no cgroup points at any more (their last container went while
	// no engine ran) linger like any other, then go.
	now := time.Now()
	for _, s := range e.byID {
		if s.refs <= 0 {
			s.idleSince = now
		}
	}
	e.reap(now)
	return nil
}

// Apply points cgroup cg at rule set rs, loading rs first if no other
// cgroup uses it. The switch is one map update: the cgroup has the old set
// or the new one, never a mix or none. The old set is freed once unused.
func (e *Engine) Apply(cg uint64, rs *policy.RuleSet) ([]enforce.Unenforced, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := e.cgroups[cg]
	if prev != nil && prev.digest == rs.Digest {
		return prev.unenforced, nil
	}
	s, err := e.load(rs)
	if err != nil {
		return nil, err
	}
	if err := e.maps.CgSets.Update(cg, armorCgVal{SetId: s.id, Hdr: s.header}, ebpf.UpdateAny); err != nil {
		if s.refs == 0 {
			e.free(s)
		}
		return nil, fmt.Errorf("assigning cgroup %d: %w", cg, err)
	}
	s.refs++
	e.cgroups[cg] = s
	delete(e.exempt, cg)
	if prev != nil {
		e.unref(prev)
	}
	return s.unenforced, nil
}

// Exempt marks cgroup cg as a container with nothing to enforce: no rules
// apply to it, and neither does the host set (which covers the processes
// outside every container). A set it had is released.
func (e *Engine) Exempt(cg uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exempt[cg] {
		return nil
	}
	if err := e.maps.CgSets.Update(cg, armorCgVal{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("exempting cgroup %d: %w", cg, err)
	}
	e.exempt[cg] = true
	if prev := e.cgroups[cg]; prev != nil {
		delete(e.cgroups, cg)
		e.unref(prev)
	}
	return nil
}

// ApplyHost makes rs the set of the node's own processes: every process
// whose cgroup is neither a container's (Apply, Exempt) nor below one.
// Like Apply, the switch is one map update.
func (e *Engine) ApplyHost(rs *policy.RuleSet) ([]enforce.Unenforced, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := e.host
	if prev != nil && prev.digest == rs.Digest {
		return prev.unenforced, nil
	}
	s, err := e.load(rs)
	if err != nil {
		return nil, err
	}
	if err := e.maps.HostSet.Update(uint32(0), armorCgVal{SetId: s.id, Hdr: s.header}, ebpf.UpdateAny); err != nil {
		if s.refs == 0 {
			e.free(s)
		}
		return nil, fmt.Errorf("assigning the host set: %w", err)
	}
	s.refs++
	e.host = s
	if prev != nil {
		e.unref(prev)
	}
	return s.unenforced, nil
}

// RemoveHost stops enforcing on the node's own processes.
func (e *Engine) RemoveHost() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.host == nil {
		return nil
	}
	if err := e.maps.HostSet.Update(uint32(0), armorCgVal{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("releasing the host set: %w", err)
	}
	e.unref(e.host)
	e.host = nil
	return nil
}

// Remove stops enforcing on cgroup cg.
func (e *Engine) Remove(cg uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.cgroups[cg]
	if s == nil && !e.exempt[cg] {
		return nil
	}
	if err := e.maps.CgSets.Delete(cg); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("releasing cgroup %d: %w", cg, err)
	}
	delete(e.exempt, cg)
	if s != nil {
		delete(e.cgroups, cg)
		e.unref(s)
	}
	return nil
}

func (e *Engine) unref(s *loadedSet) {
	if s.refs--; s.refs > 0 {
		return
	}
	if e.cfg.SetLinger <= 0 {
		e.free(s)
		return
	}
	s.idleSince = time.Now()
	e.reap(s.idleSince)
}

// reap frees the lingering sets idle since before now - SetLinger.
func (e *Engine) reap(now time.Time) {
	for _, s := range e.byID {
		if s.refs <= 0 && now.Sub(s.idleSince) >= e.cfg.SetLinger {
			e.free(s)
		}
	}
}

// Reap frees the sets that lingered past SetLinger (the daemon calls it
// periodically; Apply and Remove do it too).
func (e *Engine) Reap() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reap(time.Now())
}

// makeRoom frees lingering sets, the longest idle first, until a set of
// entries rule entries and one more set id fit.
func (e *Engine) makeRoom(entries int) {
	for {
		used := 0
		var oldest *loadedSet
		for _, s := range e.byID {
			used += len(s.keys)
			if s.refs <= 0 && (oldest == nil || s.idleSince.Before(oldest.idleSince)) {
				oldest = s
			}
		}
		if oldest == nil || (len(e.byID) < e.cfg.MaxContainers && used+entries <= e.cfg.MaxRuleEntries) {
			return
		}
		e.free(oldest)
	}
}

// load writes rs into the maps unless it is there already.
func (e *Engine) load(rs *policy.RuleSet) (*loadedSet, error) {
	if s := e.sets[rs.Digest]; s != nil {
		if s.recovered {
			// Found in the pins: recompute what the set does not enforce.
			if enc, err := Encode(rs, s.id, e.key); err == nil {
				s.unenforced, s.header, s.recovered = enc.Unenforced, enc.Header, false
			}
		}
		return s, nil
	}
	enc, err := Encode(rs, 0, e.key) // its size decides what must give way; the id comes after
	if err != nil {
		return nil, err
	}
	e.makeRoom(len(enc.Keys))
	id, err := e.allocID()
	if err != nil {
		return nil, err
	}
	for i := range enc.Keys {
		enc.Keys[i].SetId = id
	}
	for i := range enc.PatternKeys {
		enc.PatternKeys[i].SetId = id
	}
	for i := range enc.SysKeys {
		enc.SysKeys[i].SetId = id
	}
	if len(enc.SysKeys) > 0 && e.hooks&HooksLSM == 0 {
		// No LSM programs on this node: seccomp's log and armor-tracer
		// decide these rules, as syscallLimits says of the others.
		enc.SysKeys, enc.SysValues, enc.SysHooks, enc.Header.Syscalls = nil, nil, nil, 0
	}
	s := &loadedSet{id: id, digest: rs.Digest, keys: enc.Keys, patKeys: enc.PatternKeys, sysKeys: enc.SysKeys, unenforced: enc.Unenforced, header: enc.Header}
	// The syscall hooks before the entries, the entries before any cgroup
	// points at the set: a set that asks for them is never in force
	// without them (fail closed: Apply fails, the container is refused).
	if err := e.holdHooks(s, enc.SysHooks); err != nil {
		return nil, fmt.Errorf("rule set %s: syscall rules with fromSource: %w", rs.ShortDigest(), err)
	}
	for i := range enc.SysKeys {
		if err := e.maps.SysRules.Update(&enc.SysKeys[i], &enc.SysValues[i], ebpf.UpdateAny); err != nil {
			e.deleteKeys(s)
			return nil, fmt.Errorf("writing rule set %s syscall rules: %w", rs.ShortDigest(), err)
		}
	}
	// Patterns first: a rule entry must never point at a missing pattern.
	for i := range enc.PatternKeys {
		if err := e.maps.Patterns.Update(&enc.PatternKeys[i], &enc.Patterns[i], ebpf.UpdateAny); err != nil {
			e.deleteKeys(s)
			return nil, fmt.Errorf("writing rule set %s patterns: %w", rs.ShortDigest(), err)
		}
	}
	if len(enc.Keys) > 0 {
		if _, err := e.maps.Rules.BatchUpdate(enc.Keys, enc.Values, &ebpf.BatchOptions{ElemFlags: uint64(ebpf.UpdateAny)}); err != nil {
			// Batch operations need 5.6; fall back to one update per entry.
			for i := range enc.Keys {
				if err := e.maps.Rules.Update(&enc.Keys[i], &enc.Values[i], ebpf.UpdateAny); err != nil {
					e.deleteKeys(s)
					return nil, fmt.Errorf("writing rule set %s: %w (rules map holds %d entries at most)", rs.ShortDigest(), err, e.cfg.MaxRuleEntries)
				}
			}
		}
	}
	var name [events.DigestLen]byte
	if b, err := hex.DecodeString(strings.TrimPrefix(rs.Digest, "sha256:")); err == nil {
		copy(name[:], b)
	}
	if err := e.names.Update(id, name, ebpf.UpdateAny); err != nil {
		e.deleteKeys(s)
		return nil, fmt.Errorf("naming rule set: %w", err)
	}
	e.sets[s.digest] = s
	e.byID[id] = s
	return s, nil
}

func (e *Engine) allocID() (uint32, error) {
	if len(e.byID) >= e.cfg.MaxContainers {
		return 0, fmt.Errorf("%d rule sets loaded: the configured maximum", len(e.byID))
	}
	for {
		id := e.nextID
		e.nextID++
		if e.nextID == 0 {
			e.nextID = 1 // 0 means "no set" to the programs
		}
		if id != 0 && e.byID[id] == nil {
			return id, nil
		}
	}
}

// free removes an unused set from the maps. Its id may come back one day
// (ids wrap at 2^32): no memo may outlive it.
func (e *Engine) free(s *loadedSet) {
	_ = e.invalidateMemos()
	_ = e.names.Delete(s.id)
	e.deleteKeys(s)
	delete(e.sets, s.digest)
	delete(e.byID, s.id)
}

func (e *Engine) deleteKeys(s *loadedSet) {
	// Rule entries first, then the patterns they point at.
	if len(s.keys) > 0 {
		if _, err := e.maps.Rules.BatchDelete(s.keys, nil); err != nil {
			for i := range s.keys {
				_ = e.maps.Rules.Delete(&s.keys[i])
			}
		}
	}
	for i := range s.patKeys {
		_ = e.maps.Patterns.Delete(&s.patKeys[i])
	}
	for i := range s.sysKeys {
		_ = e.maps.SysRules.Delete(&s.sysKeys[i])
	}
	e.releaseHooks(s) // once no entry needs them
}

// Stats is what the kernel state holds now.
type Stats struct {
	Cgroups     int               `json:"cgroups"`
	Exempt      int               `json:"exempt"`    // containers without rules, outside the host set
	Lingering   int               `json:"lingering"` // sets no cgroup uses, kept for SetLinger
	Host        bool              `json:"host"`      // a host set is loaded
	Sets        int               `json:"sets"`
	RuleEntries int               `json:"ruleEntries"`
	KernelBytes uint64            `json:"kernelBytes"` // memory charged to the maps
	MapBytes    map[string]uint64 `json:"mapBytes"`    // the same, per map
	Capacity    Config            `json:"capacity"`
	Scratch     ScratchStats      `json:"scratch"`
}

// Stats counts cgroups, sets and rule entries, and the maps' kernel memory.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Stats{Cgroups: len(e.cgroups), Exempt: len(e.exempt), Host: e.host != nil, Sets: len(e.byID), Capacity: e.cfg, MapBytes: map[string]uint64{}}
	st.Scratch = e.ScratchStats()
	for _, s := range e.byID {
		st.RuleEntries += len(s.keys)
		if s.refs <= 0 {
			st.Lingering++
		}
	}
	for _, m := range []*ebpf.Map{e.maps.CgSets, e.maps.HostSet, e.maps.Rules, e.maps.Patterns, e.maps.Events, e.maps.ExeStore, e.maps.SetupStore, e.maps.OpenMemo, e.maps.MemoEpoch, e.maps.PathKey, e.maps.Scratch, e.names} {
		if info, err := m.Info(); err == nil {
			if b, ok := info.Memlock(); ok {
				st.KernelBytes += b
				st.MapBytes[info.Name] = b
			}
		}
	}
	return st
}

// Cgroups returns the cgroups with a set and that set's digest.
func (e *Engine) Cgroups() map[uint64]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[uint64]string, len(e.cgroups))
	for cg, s := range e.cgroups {
		out[cg] = s.digest
	}
	return out
}

// SetIDs returns the loaded sets' ids, sorted (for tests and diagnostics).
func (e *Engine) SetIDs() []uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]uint32, 0, len(e.byID))
	for id := range e.byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// ProgramStats returns each attached program's run count and run time (the
// kernel counts them while kernel.bpf_stats_enabled is on).
func (e *Engine) ProgramStats() map[string]ebpf.ProgramStats {
	out := map[string]ebpf.ProgramStats{}
	for name, p := range e.coll.Programs {
		if st, err := p.Stats(); err == nil {
			out[name] = *st
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for hook, a := range e.sysHooks { // armor_sys, one per hook
		if st, err := a.prog.Stats(); err == nil {
			out[armorProgArmorSys+"/"+hook] = *st
		}
	}
	return out
}

// The per-CPU scratch slots (bpf/enforce/match.h: SCRATCH_SLOTS,
// MAX_SCRATCH_SLOTS).
const (
	defaultScratchSlots = 4
	maxScratchSlots     = 8
)

// ScratchStats counts the decisions that found the first scratch slot of
// their CPU taken (another decision was preempted halfway through on that
// CPU): Contended in all; of those, Spilled found every slot of the CPU
// taken and decided in memory of their own (the task's, or another CPU's
// slot), and Refused had none and were refused (for a container) with an
// event saying so.
type ScratchStats struct {
	Contended uint64 `json:"contended"`
	Spilled   uint64 `json:"spilled"`
	Refused   uint64 `json:"refused"`
}

// ScratchStats sums the kernel's per-CPU scratch counts since the programs
// were loaded.
func (e *Engine) ScratchStats() ScratchStats {
	var perCPU []armorScratchCounts
	var st ScratchStats
	if err := e.maps.ScratchStats.Lookup(uint32(0), &perCPU); err != nil {
		return st
	}
	for _, c := range perCPU {
		st.Contended += c.Contended
		st.Spilled += c.Spilled
		st.Refused += c.Refused
	}
	return st
}

// EventsMap is the pinned ring buffer of Audit and Block events.
func (e *Engine) EventsMap() *ebpf.Map { return e.maps.Events }

// Close releases the engine's file descriptors. Pinned maps and links stay:
// enforcement continues after the process exits, until Unpin.
func (e *Engine) Close() error {
	for _, l := range e.links {
		l.Close()
	}
	for _, a := range e.sysHooks {
		a.close()
	}
	if e.names != nil {
		e.names.Close()
	}
	e.coll.Close()
	return nil
}

const bpffsMagic = 0xcafe4a11

// ensureBPFFS mounts bpffs at dir (normally /sys/fs/bpf) unless it is one.
func ensureBPFFS(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && uint32(st.Type) == bpffsMagic {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bpffs at %s: %w", dir, err)
	}
	if err := syscall.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("%s is not a bpffs and mounting one failed: %w", dir, err)
	}
	return nil
}

// Unpin removes every pin: enforcement ends once the last descriptor closes.
func Unpin(pinPath string) error {
	if pinPath == "" {
		pinPath = events.DefaultPinPath
	}
	return os.RemoveAll(pinPath)
}
