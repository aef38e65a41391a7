// Package source is the agent's Kubernetes policy source: it list-watches
// KubeArmorPolicy, KubeArmorClusterPolicy and KubeArmorHostPolicy objects
// through client-go informers and hands their documents to the policy
// store, which merges them with the policy files into one catalog.
//
// An API server that cannot be reached changes nothing in force: the
// informers keep the objects they last saw, so the last good catalog
// stays, and Status (and the metrics) say since when the source is
// disconnected.
package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nri-armor/nri-armor/k8s"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// DefaultProbeEvery is how often the source asks the API server whether it
// is reachable.
const DefaultProbeEvery = 5 * time.Second

// Options configure a Source.
type Options struct {
	// Config reaches the API server (in the cluster: rest.InClusterConfig).
	Config *rest.Config
	// Sink receives the documents of the three kinds, by k8s.DocumentName:
	// all of them after the first full list, then after every change
	// (changes that come together are delivered once) those added or
	// changed (put) and those gone (removed), and when the first change
	// among them was seen (zero for the first list). The daemon passes the
	// store's UpdateDocuments. The source keeps no document it delivered.
	Sink func(put map[string][]byte, removed []string, changed time.Time) error
	// Observe, when set, is shown each object added or updated (its
	// document and its status.status), from the informer's goroutine (the
	// webhook's status writer); it must not block or keep doc's bytes
	// beyond the call's use.
	Observe func(r k8s.Resource, namespace, name string, doc []byte, status string)
	// Logger; nil means logrus's standard logger.
	Logger logrus.FieldLogger
	// ProbeEvery is how often reachability is checked; 0 means
	// DefaultProbeEvery.
	ProbeEvery time.Duration
}

// Status is the state of the watch, for readiness and metrics.
type Status struct {
	// Synced is true once every kind has been listed in full.
	Synced bool
	// Connected says whether the API server answered the last probe and
	// no list or watch has failed since.
	Connected bool
	// Since is when Connected last changed.
	Since time.Time
	// LastError is the last list, watch or probe error.
	LastError string
	// Objects and Bytes are the policy documents held and their size.
	Objects, Bytes int
}

// Source watches the policy resources.
type Source struct {
	opts Options
	log  logrus.FieldLogger
	// informers: one per kind, made here rather than by client-go's
	// dynamic informer factory, which would link (and initialize at
	// start) a typed client and scheme for every built-in kind: several
	// MiB of the agent's memory for kinds it never reads.
	informers []cache.SharedIndexInformer
	synced    []cache.InformerSynced
	client    rest.Interface
	kick      chan struct{}

	mu sync.Mutex
	// pending (put) and removed are the changes not yet delivered (a name is in
	// at most one of them).
	pending map[string][]byte
	removed map[string]struct{}
	// objects and bytes are the documents held and their size.
	objects, bytes int
	// changedAt: when the first change not yet delivered was seen.
	changedAt time.Time
	status    Status
	errs      int // list and watch errors since start
	// delivered: the first list was (later deliveries without a
	// change are skipped).
	delivered bool
}

// New prepares a Source; Start begins the watch.
func New(opts Options) (*Source, error) {
	if opts.Config == nil || opts.Sink == nil {
		return nil, errors.New("kubernetes policy source: Config and Sink are required")
	}
	if opts.Logger == nil {
		opts.Logger = logrus.StandardLogger()
	}
	if opts.ProbeEvery <= 0 {
		opts.ProbeEvery = DefaultProbeEvery
	}
	client, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes policy source: %w", err)
	}
	// The probe's client: plain requests (/readyz), no kinds to decode.
	probeCfg := rest.CopyConfig(opts.Config)
	probeCfg.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	probe, err := rest.UnversionedRESTClientFor(probeCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes policy source: %w", err)
	}
	s := &Source{
		opts:    opts,
		log:     opts.Logger.WithField("component", "kubernetes-policies"),
		client:  probe,
		kick:    make(chan struct{}, 1),
		pending: map[string][]byte{},
		removed: map[string]struct{}{},
		status:  Status{Connected: true, Since: time.Now()},
	}
	for _, r := range k8s.Resources {
		inf := newInformer(client, r)
		s.informers = append(s.informers, inf)
		// The informer keeps each object as only what is read of it: its
		// name, its document and its status (compact); a generic map of
		// the whole object costs several times the document.
		if err := inf.SetTransform(func(obj any) (any, error) {
			// client-go may pass an object through twice (a watch-list's
			// replace): a compact one stays as it is.
			if u, ok := obj.(*unstructured.Unstructured); ok {
				return compact(u)
			}
			return obj, nil
		}); err != nil {
			return nil, err
		}
		if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, ref *cache.Reflector, err error) {
			s.failed(fmt.Sprintf("%s: %v", r.GVR.Resource, err))
			cache.DefaultWatchErrorHandler(ctx, ref, err)
		}); err != nil {
			return nil, err
		}
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.put(r, nil, obj) },
			UpdateFunc: func(old, obj any) { s.put(r, old, obj) },
			DeleteFunc: func(obj any) { s.remove(r, obj) },
		})
		if err != nil {
			return nil, err
		}
		// The handler's own sync, not the informer's: the informer is
		// synced once its cache has the first list, while the handler may
		// still be given it; a catalog built then would miss policies.
		s.synced = append(s.synced, reg.HasSynced)
	}
	return s, nil
}

// Start begins the watch, which runs until ctx ends, and returns once
// every kind is listed in full, so that no container is decided on a
// partial catalog; past syncTimeout (or ctx's end) the error names what
// failed.
func (s *Source) Start(ctx context.Context, syncTimeout time.Duration) error {
	for _, inf := range s.informers {
		go inf.RunWithContext(ctx)
	}
	go s.probe(ctx)
	wait, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wait.Done(), s.synced...) {
		s.mu.Lock()
		last := s.status.LastError
		s.mu.Unlock()
		if last == "" {
			last = "no answer"
		}
		return fmt.Errorf("kubernetes policy source: the first list of %s, %s and %s did not complete: %s (are the CRDs installed, and may the agent's service account list them?)",
			k8s.Resources[0].GVR.Resource, k8s.Resources[1].GVR.Resource, k8s.Resources[2].GVR.Resource, last)
	}
	s.mu.Lock()
	s.status.Synced = true
	s.mu.Unlock()
	if err := s.deliver(); err != nil {
		return err
	}
	go s.loop(ctx)
	return nil
}

// newInformer lists and watches one kind in every namespace, as client-go's
// dynamic informer does, without its namespace index (nothing looks
// objects up by namespace).
func newInformer(client dynamic.Interface, r k8s.Resource) cache.SharedIndexInformer {
	res := client.Resource(r.GVR)
	return cache.NewSharedIndexInformerWithOptions(
		cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return res.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return res.Watch(ctx, o)
			},
		}, client),
		&unstructured.Unstructured{},
		cache.SharedIndexInformerOptions{ObjectDescription: r.GVR.String()},
	)
}

// loop delivers the documents after each change, coalescing the changes
// that arrive while a delivery is under way.
func (s *Source) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			if err := s.deliver(); err != nil {
				s.log.Errorf("%v", err)
			}
		}
	}
}

func (s *Source) deliver() error {
	s.mu.Lock()
	put, changed := s.pending, s.changedAt
	removed := slices.Collect(maps.Keys(s.removed))
	s.pending, s.changedAt = map[string][]byte{}, time.Time{}
	clear(s.removed)
	first := !s.delivered
	s.delivered = true
	s.mu.Unlock()
	if len(put)+len(removed) == 0 && !first {
		return nil
	}
	return s.opts.Sink(put, removed, changed)
}

// compactObject is what the informer keeps of a policy object: name,
// namespace and resource version (the informer's key and bookkeeping), the
// size of its document and status.status — about a hundred bytes, where a
// generic map of the object costs several kilobytes (and an embedded
// ObjectMeta alone 250). The document (k8s.Document) is carried from the
// transform to the handler, which hands it on and drops it: the store
// keeps the policies it defines, not it.
type compactObject struct {
	name, namespace, resourceVersion string
	doc                              []byte // nil once handed on
	size                             int
	status                           string
}

// GetObjectMeta makes it a metav1.ObjectMetaAccessor, which is how the
// informer reads name, namespace and resource version (meta.Accessor): a
// short-lived ObjectMeta of them, made when asked.
func (c *compactObject) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: c.name, Namespace: c.namespace, ResourceVersion: c.resourceVersion}
}

// GetObjectKind makes it a runtime.Object; nothing reads its kind.
func (c *compactObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is a shallow copy: nothing changes a compact object.
func (c *compactObject) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}

func compact(u *unstructured.Unstructured) (*compactObject, error) {
	doc, err := k8s.Document(u)
	if err != nil {
		return nil, err
	}
	status, _, _ := unstructured.NestedString(u.Object, "status", "status")
	return &compactObject{
		name: u.GetName(), namespace: u.GetNamespace(), resourceVersion: u.GetResourceVersion(),
		doc:    doc,
		size:   len(doc),
		status: status,
	}, nil
}

// put hands on an object added (old nil) or updated.
func (s *Source) put(r k8s.Resource, old, obj any) {
	c, ok := obj.(*compactObject)
	if !ok { // cannot happen: the transform made every object compact
		s.log.Errorf("%s: an object of type %T", r.Kind, obj)
		return
	}
	doc := c.doc
	if doc == nil { // handed on already (an object passed through twice)
		return
	}
	c.doc = nil
	name := k8s.DocumentName(string(r.Kind), c.namespace, c.name)
	if s.opts.Observe != nil {
		s.opts.Observe(r, c.namespace, c.name, doc, c.status)
	}
	s.mu.Lock()
	if old, ok := old.(*compactObject); ok {
		s.bytes -= old.size
	} else {
		s.objects++
	}
	s.bytes += c.size
	s.pending[name] = doc
	delete(s.removed, name)
	s.noteChangeLocked()
	s.mu.Unlock()
	s.changed()
}

func (s *Source) remove(r k8s.Resource, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	c, ok := obj.(*compactObject)
	if !ok {
		return
	}
	name := k8s.DocumentName(string(r.Kind), c.namespace, c.name)
	s.mu.Lock()
	s.objects--
	s.bytes -= c.size
	delete(s.pending, name)
	s.removed[name] = struct{}{}
	s.noteChangeLocked()
	s.mu.Unlock()
	s.changed()
}

// noteChangeLocked records the time of the first change not yet delivered
// (after the first list: that one is not a change).
func (s *Source) noteChangeLocked() {
	if s.status.Synced && s.changedAt.IsZero() {
		s.changedAt = time.Now()
	}
}

// changed asks the loop for a delivery; one pending request is enough.
func (s *Source) changed() {
	s.mu.Lock()
	synced := s.status.Synced
	s.mu.Unlock()
	if !synced {
		return // Start delivers the full list once
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// failed records a list or watch error: the source is disconnected until
// a probe succeeds again.
func (s *Source) failed(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs++
	s.status.LastError = msg
	if s.status.Connected {
		s.status.Connected, s.status.Since = false, time.Now()
		s.log.Errorf("API server: %s: the last good policies stay in force", msg)
	}
}

// probe asks the API server's /readyz every ProbeEvery: a watch that breaks
// says so at once (failed), but only an answer says the server is back.
func (s *Source) probe(ctx context.Context) {
	t := time.NewTicker(s.opts.ProbeEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.opts.ProbeEvery)
		err := s.client.Get().AbsPath("/readyz").Do(pctx).Error()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.failed("probe: " + err.Error())
		} else {
			s.mu.Lock()
			if !s.status.Connected {
				s.status.Connected, s.status.Since = true, time.Now()
				s.log.Infof("API server reachable again")
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status reports the watch's state.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Objects, st.Bytes = s.objects, s.bytes
	return st
}

var (
	descConnected = prometheus.NewDesc("nri_armor_kubernetes_connected",
		"1 while the API server answers and the policy watch has not failed since; 0 while the last good policies are kept without it.", nil, nil)
	descSince = prometheus.NewDesc("nri_armor_kubernetes_connected_change_timestamp_seconds",
		"When nri_armor_kubernetes_connected last changed.", nil, nil)
	descObjects = prometheus.NewDesc("nri_armor_kubernetes_policy_objects",
		"Policy objects held from the API server (all three kinds, valid or not).", nil, nil)
	descBytes = prometheus.NewDesc("nri_armor_kubernetes_policy_bytes",
		"Size of the policy documents held from the API server, as JSON.", nil, nil)
	descErrors = prometheus.NewDesc("nri_armor_kubernetes_watch_errors_total",
		"List and watch errors of the policy watch.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Source) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descSince, descObjects, descBytes, descErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Source) Collect(ch chan<- prometheus.Metric) {
	st := s.Status()
	s.mu.Lock()
	errs := s.errs
	s.mu.Unlock()
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, float64(st.Since.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(st.Objects))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(errs))
}
