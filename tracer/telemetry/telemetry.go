package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/nri-armor/nri-armor/enforce/events"
)

// Visibility is the set of event classes reported for a cgroup.
type Visibility uint32

// Visibility classes: bpf/include/abi.h's enum tel_visibility, whose values
// bpf2go generates.
const (
	VisProcess      = Visibility(telemetryTelVisibilityV_PROCESS) // exec, exit, fork
	VisFile         = Visibility(telemetryTelVisibilityV_FILE)    // open
	VisNetwork      = Visibility(telemetryTelVisibilityV_NETWORK) // socket, connect, bind, accept
	VisCapabilities = Visibility(telemetryTelVisibilityV_CAPS)    // capability checks (where cap_capable attached)
	VisAll          = VisProcess | VisFile | VisNetwork | VisCapabilities
)

// Config sizes and places the telemetry's kernel state.
type Config struct {
	// PinPath, when set, is a bpffs folder (e.g. DefaultPinPath) where the
	// maps and the tracepoint links are pinned: the programs keep reporting
	// into the pinned ring buffer while the tracer is down, and a tracer
	// that opens the same folder again reuses the maps — the watched
	// cgroups, the events produced meanwhile, the lost count. Empty: nothing
	// is pinned, and Close detaches everything.
	PinPath string
	// MaxCgroups bounds the watched cgroups (default 16384).
	MaxCgroups int
	// RingBytes sizes the event ring buffer (default 4 MiB; a power of two,
	// at least a page).
	RingBytes int
	// WakeupBytes: the reader is woken each time this much more is pending
	// (default 64 KiB, at most a quarter of RingBytes); fewer bytes wait for
	// the next PollInterval.
	WakeupBytes int
	// PollInterval bounds how long Read leaves a lone event unread and
	// how long it takes to notice a cancelled context (default 100 ms).
	PollInterval time.Duration
	// SkipCapabilities leaves capability/cap_capable unattached: it runs
	// on every capability check of every process on the node.
	SkipCapabilities bool
}

// DefaultPinPath is where armor-tracer pins its telemetry state.
const DefaultPinPath = "/sys/fs/bpf/nri-armor/tracer"

func (c *Config) defaults() {
	if c.MaxCgroups <= 0 {
		c.MaxCgroups = 16384
	}
	if c.RingBytes <= 0 {
		c.RingBytes = 4 << 20
	}
	if c.WakeupBytes <= 0 {
		c.WakeupBytes = 64 << 10
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
}

// A tracepoint and the program attached to it. Raw tracepoints have no group.
type attachment struct {
	group, name string
	prog        string
	optional    bool // absent on some kernels: reported by Attached, not fatal
}

// attachments lists every tracepoint the programs use; Attached is keyed by
// their "group/name". A syscall is seen at its exit only (its arguments are
// still in the caller's registers): one syscalls/ tracepoint per syscall,
// not an enter and an exit, and not raw_syscalls' sys_enter / sys_exit,
// which run for every syscall of every process (docs/benchmarks.md has the
// figures).
var attachments = []attachment{
	{"sched", "sched_process_exec", telemetryProgTelExec, false},
	{"sched", "sched_process_exit", telemetryProgTelExit, false},
	{"", "sched_process_fork", telemetryProgTelFork, false},
	// open(2) and creat(2) do not exist on arm64, openat2(2) before Linux
	// 5.6. creat(2) is rare: its tracepoint costs only its own calls.
	{"syscalls", "sys_exit_open", telemetryProgTelSysExit, true},
	{"syscalls", "sys_exit_openat", telemetryProgTelSysExit, false},
	{"syscalls", "sys_exit_openat2", telemetryProgTelSysExit, true},
	{"syscalls", "sys_exit_creat", telemetryProgTelSysExit, true},
	{"syscalls", "sys_exit_socket", telemetryProgTelSysExit, false},
	{"syscalls", "sys_exit_connect", telemetryProgTelSysExit, false},
	{"syscalls", "sys_exit_bind", telemetryProgTelSysExit, false},
	{"syscalls", "sys_exit_accept", telemetryProgTelSysExit, false},
	{"syscalls", "sys_exit_accept4", telemetryProgTelSysExit, false},
	{"capability", "cap_capable", telemetryProgTelCapable, true},
}

func (a attachment) key() string {
	if a.group == "" {
		return "sched/" + a.name // raw tracepoint of the sched group
	}
	return a.group + "/" + a.name
}

func (a attachment) pinName() string {
	if a.group == "" {
		return "raw_" + a.name
	}
	return a.group + "_" + a.name
}

// Telemetry is the loaded and attached telemetry: its maps, links and the
// ring buffer reader. Read is for one goroutine; the rest is safe for
// concurrent use.
type Telemetry struct {
	cfg      Config
	coll     *ebpf.Collection
	maps     telemetryMaps
	links    []link.Link
	attached map[string]error
	running  map[string]*ebpf.Program // by program name: what the links run

	readMu sync.Mutex
	rd     *ringbuf.Reader
	rec    ringbuf.Record
	armed  bool // the reader's deadline is in the future
	dec    decoder
}

// Open loads the programs (or re-opens the pinned maps under cfg.PinPath),
// attaches them, and opens the ring buffer reader. It fails if a tracepoint
// that every supported kernel has cannot be attached; optional ones (see
// Attached) only report why.
func Open(cfg Config) (*Telemetry, error) {
	cfg.defaults()
	if cfg.RingBytes&(cfg.RingBytes-1) != 0 || cfg.RingBytes < os.Getpagesize() {
		return nil, fmt.Errorf("telemetry ring buffer of %d bytes: must be a power of two of at least a page", cfg.RingBytes)
	}
	_ = rlimit.RemoveMemlock()
	spec, err := loadTelemetry()
	if err != nil {
		return nil, err
	}
	spec.Maps[telemetryMapVisible].MaxEntries = uint32(cfg.MaxCgroups)
	spec.Maps[telemetryMapEvents].MaxEntries = uint32(cfg.RingBytes)
	// A threshold the ring cannot hold would never wake the reader.
	if cfg.WakeupBytes > cfg.RingBytes/2 {
		cfg.WakeupBytes = cfg.RingBytes / 4
	}
	if err := spec.Variables[telemetryVarWakeupBytes].Set(uint64(cfg.WakeupBytes)); err != nil {
		return nil, err
	}
	var opts ebpf.CollectionOptions
	if cfg.PinPath != "" {
		if err := pinDir(cfg.PinPath); err != nil {
			return nil, err
		}
		opts.Maps.PinPath = cfg.PinPath
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, opts)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading telemetry programs: %+v", ve)
		}
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("loading telemetry programs: a map pinned under %s by another version does not fit (remove the folder to start afresh): %w", cfg.PinPath, err)
		}
		return nil, fmt.Errorf("loading telemetry programs: %w", err)
	}
	t := &Telemetry{cfg: cfg, coll: coll, attached: map[string]error{}, running: map[string]*ebpf.Program{}}
	if err := coll.Assign(&t.maps); err != nil {
		coll.Close()
		return nil, err
	}
	if err := t.attach(); err != nil {
		t.Close()
		return nil, err
	}
	if t.rd, err = ringbuf.NewReader(t.maps.Events); err != nil {
		t.Close()
		return nil, fmt.Errorf("telemetry ring buffer reader: %w", err)
	}
	return t, nil
}

// attach links each program to its tracepoints. With a pin path, a link
// pinned by a previous run is kept when its program is the same (same tag):
// a restart then has neither gap nor duplicates. A changed program's link
// is replaced: the new one is pinned over the old (a rename), so there is
// no gap, but the old one is detached by the kernel a little later
// (asynchronously), and for that while both report.
func (t *Telemetry) attach() error {
	for _, a := range attachments {
		err := t.attachOne(a)
		t.attached[a.key()] = err
		if err != nil && !a.optional {
			return fmt.Errorf("attaching telemetry to tracepoint %s: %w", a.key(), err)
		}
	}
	if t.cfg.PinPath != "" {
		return removeStaleLinks(filepath.Join(t.cfg.PinPath, "links"))
	}
	return nil
}

// removeStaleLinks detaches the pinned links of tracepoints this version
// no longer uses (an older version's syscalls/sys_enter_* links): their
// programs would go on running next to the new ones.
func removeStaleLinks(dir string) error {
	keep := map[string]bool{}
	for _, a := range attachments {
		keep[a.pinName()] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("telemetry pin folder: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("removing a stale telemetry link: %w", err)
			}
		}
	}
	return nil
}

func (t *Telemetry) attachOne(a attachment) error {
	prog := t.coll.Programs[a.prog]
	if a.key() == "capability/cap_capable" {
		if t.cfg.SkipCapabilities {
			return errors.New("not attached: Config.SkipCapabilities")
		}
		if err := checkCapCapableFormat(); err != nil {
			return err
		}
	}
	pin := ""
	if t.cfg.PinPath != "" {
		pin = filepath.Join(t.cfg.PinPath, "links", a.pinName())
		if old, err := link.LoadPinnedLink(pin, nil); err == nil {
			if running := sameProgram(old, prog); running != nil {
				t.links = append(t.links, old)
				t.keep(a.prog, running)
				return nil
			}
			old.Close()
		}
	}
	var l link.Link
	var err error
	if a.group == "" {
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.name, Program: prog})
	} else {
		l, err = link.Tracepoint(a.group, a.name, prog, nil)
	}
	if err != nil {
		return err
	}
	if pin != "" {
		tmp := pin + "_new" // bpffs refuses names with a dot
		_ = os.Remove(tmp)
		if err := l.Pin(tmp); err != nil {
			l.Close()
			return fmt.Errorf("pinning the link: %w", err)
		}
		if err := os.Rename(tmp, pin); err != nil {
			l.Close()
			return fmt.Errorf("pinning the link: %w", err)
		}
	}
	t.links = append(t.links, l)
	t.keep(a.prog, prog)
	return nil
}

// keep records the program that runs for name (for Stats): the one loaded
// now, or the one a kept pinned link runs.
func (t *Telemetry) keep(name string, p *ebpf.Program) {
	if old := t.running[name]; old != nil && old != p && old != t.coll.Programs[name] {
		old.Close()
	}
	t.running[name] = p
}

// sameProgram returns the program that pinned link l runs if it has the
// tag (a hash of the instructions, map references aside) of p, else nil.
func sameProgram(l link.Link, p *ebpf.Program) *ebpf.Program {
	li, err := l.Info()
	if err != nil {
		return nil
	}
	old, err := ebpf.NewProgramFromID(li.Program)
	if err != nil {
		return nil
	}
	oi, err1 := old.Info()
	ni, err2 := p.Info()
	if err1 != nil || err2 != nil || oi.Tag != ni.Tag {
		old.Close()
		return nil
	}
	return old
}

// checkCapCapableFormat verifies that the kernel has the cap_capable
// tracepoint (recent kernels only: Debian 12's 6.1 has none) with the
// layout tel_capable reads (classic tracepoint fields are not relocated by
// CO-RE).
func checkCapCapableFormat() error {
	var format []byte
	var err error
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if format, err = os.ReadFile(filepath.Join(dir, "events/capability/cap_capable/format")); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("no capability/cap_capable tracepoint in tracefs: %w", err)
	}
	for _, want := range []string{"field:int cap;\toffset:32;\tsize:4;", "field:int ret;\toffset:36;\tsize:4;"} {
		if !strings.Contains(string(format), want) {
			return fmt.Errorf("capability/cap_capable has another layout than the program reads (no %q)", want)
		}
	}
	return nil
}

const bpffsMagic = 0xcafe4a11

// pinDir creates the pin folder and its links folder on a bpffs.
func pinDir(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o700); err != nil {
		return fmt.Errorf("telemetry pin folder: %w", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("telemetry pin folder: %w", err)
	}
	if uint32(st.Type) != bpffsMagic {
		return fmt.Errorf("telemetry pin folder %s is not on a bpffs (mount one at /sys/fs/bpf)", dir)
	}
	return nil
}

// Watch reports the classes v for the processes of cgroup cgroupID (a
// cgroup v2 id) from now on; v replaces what the cgroup had. v == 0 is
// Unwatch.
func (t *Telemetry) Watch(cgroupID uint64, v Visibility) error {
	if v == 0 {
		return t.Unwatch(cgroupID)
	}
	if v&^VisAll != 0 {
		return fmt.Errorf("watching cgroup %d: unknown visibility bits %#x", cgroupID, uint32(v&^VisAll))
	}
	if err := t.maps.Visible.Update(cgroupID, uint32(v), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Unwatch stops the events of cgroup cgroupID. Syscalls are reported as
// they return: one that returns after Unwatch is not reported.
func (t *Telemetry) Unwatch(cgroupID uint64) error {
	err := t.maps.Visible.Delete(cgroupID)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unwatching cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// Watched returns the watched cgroups, e.g. as a restarted tracer finds
// them in the pinned map.
func (t *Telemetry) Watched() (map[uint64]Visibility, error) {
	out := map[uint64]Visibility{}
	var cg uint64
	var v uint32
	it := t.maps.Visible.Iterate()
	for it.Next(&cg, &v) {
		out[cg] = Visibility(v)
	}
	return out, it.Err()
}

// Read returns the next event, waiting until one comes or ctx ends. Events
// are batched in the kernel: a lone event can wait up to PollInterval.
// Call it from one goroutine.
func (t *Telemetry) Read(ctx context.Context) (Event, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		// The deadline is renewed only once it has passed: while records
		// are pending the reader does not wait at all, and reading the
		// clock per event would cost the reader a tenth of its time.
		if !t.armed {
			t.rd.SetDeadline(time.Now().Add(t.cfg.PollInterval))
			t.armed = true
		}
		err := t.rd.ReadInto(&t.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.armed = false
			continue
		}
		if err != nil {
			return Event{}, fmt.Errorf("reading telemetry events: %w", err)
		}
		return t.dec.decode(t.rec.RawSample)
	}
}

// Lost returns how many events found no room in the ring buffer since the
// maps were created.
func (t *Telemetry) Lost() uint64 { return events.EventsLost(t.maps.EventsLost) }

// Stats returns each attached program's run count and run time (by
// program name, e.g. tel_exec; tel_sys_exit serves every syscall
// tracepoint); the kernel counts them only while kernel.bpf_stats_enabled
// is 1 (or ebpf.EnableStats holds).
func (t *Telemetry) Stats() map[string]ebpf.ProgramStats {
	out := map[string]ebpf.ProgramStats{}
	for name, p := range t.running {
		if st, err := p.Stats(); err == nil {
			out[name] = *st
		}
	}
	return out
}

// Attached says, for each tracepoint ("group/name"), whether a program is
// attached to it (nil) or why not. sched/sched_process_fork is a raw
// tracepoint.
func (t *Telemetry) Attached() map[string]error {
	out := make(map[string]error, len(t.attached))
	for k, v := range t.attached {
		out[k] = v
	}
	return out
}

// Close releases the reader, links and maps. Without a pin path that
// detaches the programs; with one, they keep reporting into the pinned ring
// buffer until Unpin.
func (t *Telemetry) Close() error {
	if t.coll == nil {
		return nil // closed already
	}
	if t.rd != nil {
		t.rd.Close()
	}
	// Detaching a tracepoint waits for an RCU grace period: closed one
	// after the other, the links would add their waits up (figures in
	// docs/benchmarks.md), so they are closed together.
	var wg sync.WaitGroup
	for _, l := range t.links {
		wg.Go(func() { l.Close() })
	}
	wg.Wait()
	for name, p := range t.running {
		if p != t.coll.Programs[name] {
			p.Close()
		}
	}
	t.coll.Close()
	t.coll, t.links = nil, nil
	return nil
}

// Unpin removes the pinned telemetry state under pinPath: the programs are
// detached once no process holds them.
func Unpin(pinPath string) error {
	if pinPath == "" {
		return errors.New("telemetry: no pin path to remove")
	}
	return os.RemoveAll(pinPath)
}
