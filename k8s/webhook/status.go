package webhook

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/nri-armor/nri-armor/k8s"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// StatusValid is the status KubeArmor's controller writes on a policy; an
// invalid one gets StatusInvalidPrefix and its errors.
const (
	StatusValid         = "OK"
	StatusInvalidPrefix = "Invalid: "
)

// maxStatus bounds the errors written in a status.
const maxStatus = 1024

// Status writes each policy's verdict in its status.status, the field
// KubeArmor's CRDs have: "OK", or "Invalid: " and the errors that keep it
// out of force (a policy stored before the webhook ran, or that a newer
// nri-armor refuses). One component writes it, the webhook Deployment,
// not every node's agent.
type Status struct {
	Client dynamic.Interface
	Log    logrus.FieldLogger

	mu      sync.Mutex
	pending map[string]statusUpdate // by resource/namespace/name: the last verdict wins
	kick    chan struct{}
}

type statusUpdate struct {
	r               k8s.Resource
	namespace, name string
	want            string
}

// StatusOf is the status a policy document (k8s.Document) named name gets.
func StatusOf(name string, doc []byte) string {
	res := policy.LoadBytes(name, doc)
	if errs := res.Errors(); len(errs) > 0 {
		msg := StatusInvalidPrefix + Explain(errs)
		if len(msg) > maxStatus {
			msg = msg[:maxStatus-3] + "..."
		}
		return msg
	}
	return StatusValid
}

// Observe is the source's Observe hook: it queues a write when the
// object's status is not its verdict.
func (s *Status) Observe(r k8s.Resource, namespace, name string, doc []byte, status string) {
	want := StatusOf(k8s.DocumentName(string(r.Kind), namespace, name), doc)
	if status == want {
		return
	}
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[string]statusUpdate{}
		s.kick = make(chan struct{}, 1)
	}
	s.pending[r.GVR.Resource+"/"+namespace+"/"+name] = statusUpdate{r, namespace, name, want}
	kick := s.kick
	s.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// Run writes the queued statuses until ctx ends, as merge patches of the
// status subresource. A write that fails is not retried: the object's next
// change comes back through Observe.
func (s *Status) Run(ctx context.Context) {
	s.mu.Lock()
	if s.kick == nil {
		s.pending, s.kick = map[string]statusUpdate{}, make(chan struct{}, 1)
	}
	kick := s.kick
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = map[string]statusUpdate{}
		s.mu.Unlock()
		// A few writes at once: a thousand policies applied together
		// (a chart of templates) are not written one round trip at a time.
		work := make(chan statusUpdate)
		var wg sync.WaitGroup
		for range statusWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for up := range work {
					s.write(ctx, up)
				}
			}()
		}
		for _, up := range batch {
			work <- up
		}
		close(work)
		wg.Wait()
	}
}

// statusWriters is how many status writes are under way at once.
const statusWriters = 8

func (s *Status) write(ctx context.Context, up statusUpdate) {
	patch, err := json.Marshal(map[string]any{"status": map[string]string{"status": up.want}})
	if err != nil {
		return
	}
	var ri dynamic.ResourceInterface = s.Client.Resource(up.r.GVR)
	if up.r.Namespaced {
		ri = s.Client.Resource(up.r.GVR).Namespace(up.namespace)
	}
	if _, err := ri.Patch(ctx, up.name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		s.Log.Debugf("status of %s %s/%s: %v", up.r.Kind, up.namespace, up.name, err)
	}
}
