package events

import (
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// The pins nri-armor's engine (enforce/bpflsm) makes and readers open: the
// folder, and the map of set names, which the engine creates itself (the
// other maps' names come from bpf/enforce/maps.h and bpf/include/events.h).
const (
	// DefaultPinPath is where nri-armor pins its kernel state.
	DefaultPinPath = "/sys/fs/bpf/nri-armor"
	// SetNamesMap maps a kernel set id to the set's digest.
	SetNamesMap = "set_names"
	// DigestLen is the size of a digest in SetNamesMap (sha256).
	DigestLen = 32
)

// Pinned is what a reader of nri-armor's kernel state (armor-tracer) opens
// from the pins, without loading anything: the event ring buffer and the
// set-names map. It works while nri-armor is down, and keeps working across
// its restarts (a restarted engine reuses the same pinned maps).
type Pinned struct {
	Events *ebpf.Map // the Audit/Block event ring buffer
	names  *ebpf.Map // set id → digest
	lost   *ebpf.Map // per CPU: events the ring buffer had no room for
}

// OpenPinned opens the pins under pinPath ("" means DefaultPinPath).
func OpenPinned(pinPath string) (*Pinned, error) {
	if pinPath == "" {
		pinPath = DefaultPinPath
	}
	// Not read-only: a ring buffer reader writes its consumer position.
	ev, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, "events"), nil)
	if err != nil {
		return nil, fmt.Errorf("opening nri-armor's event ring buffer: %w", err)
	}
	names, err := ebpf.LoadPinnedMap(filepath.Join(pinPath, SetNamesMap), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("opening nri-armor's set names: %w", err)
	}
	// Pins of an older nri-armor may lack the counter: Lost is then 0.
	lost, _ := ebpf.LoadPinnedMap(filepath.Join(pinPath, "events_lost"), &ebpf.LoadPinOptions{ReadOnly: true})
	return &Pinned{Events: ev, names: names, lost: lost}, nil
}

// Lost is the number of events the kernel could not write to the ring
// buffer (it was full) since the pins were made.
func (p *Pinned) Lost() uint64 {
	if p.lost == nil {
		return 0
	}
	return EventsLost(p.lost)
}

// EventsLost sums an events_lost map (bpf/include/events.h: one counter
// per CPU); 0 when it cannot be read.
func EventsLost(m *ebpf.Map) uint64 {
	var perCPU []uint64
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return 0
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n
}

// SetDigest returns the digest of kernel set id ("sha256:…"), or "" when
// no set has that id now.
func (p *Pinned) SetDigest(id uint32) string {
	var name [DigestLen]byte
	if err := p.names.Lookup(id, &name); err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(name[:])
}

// Close closes the maps (the pins stay).
func (p *Pinned) Close() error {
	if p.lost != nil {
		p.lost.Close()
	}
	p.names.Close()
	return p.Events.Close()
}
