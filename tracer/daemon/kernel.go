package daemon

import (
	"context"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// KernelTelemetry is the kernel telemetry loader (package telemetry) as the
// tracer uses it: a TelemetrySource (events, losses), a
// tracer.TelemetryFilter (which cgroups report what) and a
// tracer.ProgramStats.
type KernelTelemetry struct {
	t      *telemetry.Telemetry
	events chan telemetry.Event
}

// OpenTelemetry loads the telemetry programs cfg asks for and starts
// reading their events until ctx ends (then Close).
func OpenTelemetry(ctx context.Context, cfg Config) (*KernelTelemetry, error) {
	pin := cfg.TelemetryPinPath
	if pin == "" {
		pin = filepath.Join(cfg.BPFFS, "tracer")
	}
	t, err := telemetry.Open(telemetry.Config{PinPath: pin, MaxCgroups: cfg.MaxContainers, RingBytes: cfg.TelemetryRingBytes, SkipCapabilities: cfg.SkipCapabilities})
	if err != nil {
		return nil, err
	}
	k := &KernelTelemetry{t: t, events: make(chan telemetry.Event, 4096)}
	go func() {
		defer close(k.events)
		for {
			ev, err := t.Read(ctx)
			if err != nil {
				return // ctx ended, or the reader was closed
			}
			select {
			case k.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return k, nil
}

// Attached says which tracepoints attached (nil) and why others did not.
func (k *KernelTelemetry) Attached() map[string]error { return k.t.Attached() }

// Events are the decoded telemetry events.
func (k *KernelTelemetry) Events() <-chan telemetry.Event { return k.events }

// Lost counts events the kernel had no room for.
func (k *KernelTelemetry) Lost() uint64 { return k.t.Lost() }

// Watch has the kernel report the classes v names for cgroup cg.
func (k *KernelTelemetry) Watch(cg uint64, v policy.Visibility) error {
	return k.t.Watch(cg, visibility(v))
}

// Unwatch stops the kernel reporting cgroup cg.
func (k *KernelTelemetry) Unwatch(cg uint64) error { return k.t.Unwatch(cg) }

// Watched lists the cgroups the (pinned) filter reports, with their classes.
func (k *KernelTelemetry) Watched() (map[uint64]policy.Visibility, error) {
	w, err := k.t.Watched()
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]policy.Visibility, len(w))
	for cg, v := range w {
		out[cg] = policy.Visibility{Process: v&telemetry.VisProcess != 0, File: v&telemetry.VisFile != 0,
			Network: v&telemetry.VisNetwork != 0, Capabilities: v&telemetry.VisCapabilities != 0}
	}
	return out, nil
}

// ProgramStats are the telemetry programs' run counts and times.
func (k *KernelTelemetry) ProgramStats() map[string]ebpf.ProgramStats { return k.t.Stats() }

// Close detaches what is not pinned and closes the maps.
func (k *KernelTelemetry) Close() error { return k.t.Close() }

func visibility(v policy.Visibility) telemetry.Visibility {
	var out telemetry.Visibility
	if v.Process {
		out |= telemetry.VisProcess
	}
	if v.File {
		out |= telemetry.VisFile
	}
	if v.Network {
		out |= telemetry.VisNetwork
	}
	if v.Capabilities {
		out |= telemetry.VisCapabilities
	}
	return out
}
