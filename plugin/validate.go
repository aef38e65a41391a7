package plugin

import (
	"context"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// The stub subscribes nri-armor to validation because Plugin has the method.
var _ stub.ValidateContainerAdjustmentInterface = (*Plugin)(nil)

// ValidateContainerAdjustment makes nri-armor one of the runtime's
// adjustment validators, which closes a fail-open window of the fail-closed
// configuration (config/containerd-nri.toml): right after nri-armor dies or
// times out, NRI (v0.12.3, in containerd 2.4) still lists it, so its
// default validator counts it as present, while the CreateContainer call to
// it fails on the closed connection and is skipped without an error — the
// container would start unprotected (e2e TestCrashWindow). A validator that
// cannot be reached fails the request instead. When nri-armor answers, its
// own CreateContainer has already run in the same request: nothing more to
// check.
func (p *Plugin) ValidateContainerAdjustment(_ context.Context, _ *api.ValidateContainerAdjustmentRequest) (err error) {
	defer func(start time.Time) { p.done("ValidateContainerAdjustment", start, err) }(time.Now())
	return nil
}
