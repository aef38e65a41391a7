package store

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/sirupsen/logrus"
)

// DefaultDebounce is how long the store waits after a file system event for
// the burst to end before it reloads.
const DefaultDebounce = 100 * time.Millisecond

// maxDelayFactor bounds how long a continuous stream of events can delay a
// reload: at most this many debounce periods after the first event.
const maxDelayFactor = 10

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("policy store: closed")

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's messages; nil means logrus's standard logger.
	Logger logrus.FieldLogger
	// Rejected is called once for each rejected version of a file (the
	// daemon counts it in a metric). err is a *FileError; its text names the
	// file and line of each error. A directory that cannot be read is also
	// reported here, with the directory as file.
	Rejected func(file string, err error)
	// OnChange is called with each new catalog after a change, in order, from
	// the goroutine that reloaded.
	//
	// Rejected and OnChange are called with the store's lock held: they may
	// call Catalog, not the store's other methods.
	OnChange func(*policy.Catalog)
	// Debounce is the quiet time that ends a burst of events;
	// 0 means DefaultDebounce.
	Debounce time.Duration
}

// FileError is why a version of a file was rejected: its error issues, each
// FILE:LINE: FIELD: MESSAGE.
type FileError struct {
	File   string
	Issues []*policy.Issue
}

func (e *FileError) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Error())
	}
	return b.String()
}

// Unwrap gives the issues to errors.As.
func (e *FileError) Unwrap() []error {
	out := make([]error, len(e.Issues))
	for i, is := range e.Issues {
		out[i] = is
	}
	return out
}

// FileState describes one file for an operator.
type FileState struct {
	Path string `json:"path"`
	// Status is the verdict on the file's current content. An invalid file
	// still has the policies of its last good version in force.
	Status policy.FileStatus `json:"status"`
	// Policies is the number of policies of this file in force.
	Policies int `json:"policies"`
	// Error is why the current content was rejected; empty when it is in force.
	Error string `json:"error,omitempty"`
	// Issues are the errors, warnings and notices of the current content.
	Issues []*policy.Issue `json:"issues,omitempty"`
}

// fileState is what the store keeps per file.
type fileState struct {
	path    string
	sum     [32]byte // of the content last read
	result  *policy.FileResult
	inForce []*policy.Policy
	status  policy.FileStatus
	err     *FileError // rejection of the current content, nil if in force
	// reported is the rejection last reported, so that one rejected version
	// is reported once however many reloads see it.
	reported string
	// warned is the content whose warnings were last logged.
	warned [32]byte
}

// Store holds the policies in force. Its methods are safe for concurrent use.
type Store struct {
	dirs []string
	opts Options
	log  logrus.FieldLogger

	catalog atomic.Pointer[policy.Catalog]

	mu    sync.Mutex // serializes reloads; guards the fields below
	files map[string]*fileState
	// docs are the documents of the sources that are not directories (the
	// API server's policy objects), by source, then by name: each is loaded,
	// accepted and rejected as a file of that name would be. A content is
	// kept only until it is loaded (nil after): thousands of them would
	// double what their policies cost.
	docs map[string]map[string][]byte
	// docData, order and paths are reloadLocked's scratch, kept between
	// reloads (cleared, not reallocated): with thousands of documents,
	// making them anew at each change of one was most of the agent's
	// garbage. order is the last full reload's load order.
	docData map[string][]byte
	order   map[string]int
	paths   []string
	// claims names the policy in force for each Ref (kept by accept and
	// withdraw; rebuilt by each full reload); conflicted are the versions
	// last refused because another file has one of their policies in
	// force: candidates again at every reload.
	claims     map[string]*policy.Policy
	conflicted map[*fileState]bool
	// added and removed are the policies put in force and withdrawn since
	// the last catalog (by Ref), which publish updates it with; rejected
	// is the last catalog's SetRejected.
	added    []*policy.Policy
	removed  []string
	rejected map[string]string
	// changed is when the first change not yet in a published catalog was
	// seen (zero: none, or not known): the next catalog's Changed.
	changed time.Time
	subs    []chan *policy.Catalog
	closed  bool
	dirErrs map[string]string // directory → its read error last reported

	watcher *fsnotify.Watcher
	done    chan struct{}
	stopped chan struct{}
}

// New loads every policy file of dirs and starts watching them. Invalid files
// are not an error (they are rejected and reported); a directory that does
// not exist or cannot be watched is.
func New(dirs []string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = logrus.StandardLogger()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	s := &Store{
		opts:    opts,
		log:     opts.Logger.WithField("component", "policy-store"),
		files:   map[string]*fileState{},
		dirErrs: map[string]string{},
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		d = filepath.Clean(d)
		info, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("policy store: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("policy store: %s is not a directory", d)
		}
		if !seen[d] {
			seen[d] = true
			s.dirs = append(s.dirs, d)
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("policy store: %w", err)
	}
	s.watcher = w
	for _, d := range s.dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("policy store: watch %s: %w", d, err)
		}
	}
	s.mu.Lock()
	s.reloadLocked(false)
	s.mu.Unlock()
	go s.watch()
	return s, nil
}

// Catalog returns the catalog in force. It is immutable: a change builds a
// new one.
func (s *Store) Catalog() *policy.Catalog { return s.catalog.Load() }

// Subscribe returns a channel that receives each new catalog after a change.
// The channel holds one catalog: a subscriber that falls behind receives the
// newest one, never a stale one. It is closed by Close. Subscribe, then read
// Catalog, to miss no change.
func (s *Store) Subscribe() <-chan *policy.Catalog {
	ch := make(chan *policy.Catalog, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch
	}
	s.subs = append(s.subs, ch)
	return ch
}

// Reload reads the directories again now (the daemon calls it on SIGHUP).
// Rejections are reported as for any reload; the error is ErrClosed after
// Close, else nil.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.noteChange(time.Now())
	s.reloadLocked(true)
	return nil
}

// noteChange records that a change was seen at t (nothing when t is zero).
func (s *Store) noteChange(t time.Time) {
	if !t.IsZero() && (s.changed.IsZero() || t.Before(s.changed)) {
		s.changed = t
	}
}

// UpdateDocuments changes the documents of one source that is not a
// directory (the daemon's Kubernetes watch) and reloads: put adds or
// replaces documents (name → content), removed names those gone. A name
// stands for its document as a file path does: it is loaded, validated and
// kept at its last good version in the same way, and a policy it defines
// that another file or document already has in force is rejected. Names
// must not be file paths (they are never read from disk); sources are
// disjoint. The error is ErrClosed after Close. changed is when the first
// change among them was seen (the watch event), zero when not known: the
// next catalog's Changed. The store does not keep put's contents.
func (s *Store) UpdateDocuments(source string, put map[string][]byte, removed []string, changed time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.noteChange(changed)
	if s.docs == nil {
		s.docs = map[string]map[string][]byte{}
	}
	docs := s.docs[source]
	if docs == nil {
		docs = make(map[string][]byte, len(put))
		s.docs[source] = docs
	}
	for _, name := range removed {
		delete(docs, name)
	}
	names := append([]string{}, removed...)
	for name, data := range put {
		if data == nil { // nil stands for "loaded" below
			data = []byte{}
		}
		docs[name] = data
		names = append(names, name)
	}
	s.reloadDocsLocked(docs, names)
	for name := range put {
		if _, ok := docs[name]; ok {
			docs[name] = nil // loaded: its sum and policies are kept
		}
	}
	return nil
}

// Files describes each file, sorted by path.
func (s *Store) Files() []FileState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FileState, 0, len(s.files))
	for _, f := range s.files {
		st := FileState{Path: f.path, Status: f.status, Policies: len(f.inForce)}
		var issues []*policy.Issue
		if f.result != nil {
			issues = f.result.Issues
		}
		if f.err != nil {
			st.Error = f.err.Error()
			if f.result == nil || len(f.result.Errors()) == 0 {
				issues = append(issues[:len(issues):len(issues)], f.err.Issues...)
			}
		}
		for _, is := range issues { // copies: the caller may keep or change them
			c := *is
			st.Issues = append(st.Issues, &c)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Close stops watching and delivering. Subscribers' channels are closed;
// Catalog and Files still answer.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	<-s.stopped // the watch loop may be waiting for mu: release it first
	err := s.watcher.Close()
	s.mu.Lock()
	for _, ch := range s.subs {
		close(ch)
	}
	s.subs = nil
	s.mu.Unlock()
	return err
}

// watch turns file system events into debounced reloads.
func (s *Store) watch() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var first time.Time // first event of the pending burst; zero if none
	for {
		select {
		case <-s.done:
			return
		case ev, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			s.log.WithField("event", ev.String()).Trace("file system event")
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			wait := s.opts.Debounce
			if limit := first.Add(maxDelayFactor * s.opts.Debounce).Sub(now); limit < wait {
				wait = max(limit, 0)
			}
			timer.Reset(wait)
		case err, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			// An overflow lost events: read everything again.
			s.log.WithError(err).Warn("watching policy directories")
			if first.IsZero() {
				first = time.Now()
			}
			timer.Reset(s.opts.Debounce)
		case <-timer.C:
			s.mu.Lock()
			if !s.closed {
				s.noteChange(first)
				s.reloadLocked(false)
			}
			first = time.Time{}
			s.mu.Unlock()
		}
	}
}

// hidden says whether a directory walk skips this entry.
func hidden(name string) bool { return policy.IsHidden(name) }

// scan walks the directories, watching every directory it finds before
// reading it, and returns the policy files in load order and the
// directories that could not be read.
func (s *Store) scan() (files []string, failed []string) {
	watched := map[string]bool{}
	for _, d := range s.watcher.WatchList() {
		watched[d] = true
	}
	seen := map[string]bool{}
	errsNow := map[string]string{}
	for _, root := range s.dirs {
		// The trailing separator makes the walk follow a root that is a
		// symbolic link to a directory.
		walkRoot := root
		if !strings.HasSuffix(root, string(filepath.Separator)) {
			walkRoot += string(filepath.Separator)
		}
		var found []string
		err := filepath.WalkDir(walkRoot, func(path string, d fs.DirEntry, err error) error {
			path = filepath.Clean(path)
			if err != nil {
				failed = append(failed, path)
				errsNow[path] = err.Error()
				if errsNow[path] != s.dirErrs[path] {
					s.log.WithError(err).WithField("dir", path).Error("cannot read policy directory; its files keep their state")
					if s.opts.Rejected != nil {
						s.opts.Rejected(path, err)
					}
				}
				if d == nil || d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if path != root && hidden(d.Name()) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if !watched[path] {
					if err := s.watcher.Add(path); err != nil {
						s.log.WithError(err).WithField("dir", path).Warn("cannot watch directory; changes below it are seen on the next reload")
					} else {
						watched[path] = true
					}
				}
				return nil
			}
			if policy.IsPolicyFile(path) && !seen[path] {
				seen[path] = true
				found = append(found, path)
			}
			return nil
		})
		if err != nil { // cannot happen: the walk function returns no error
			failed = append(failed, root)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	s.dirErrs = errsNow
	// A removed or moved directory's watch is dropped by fsnotify itself
	// (IN_DELETE_SELF, IN_MOVE_SELF); it is added again here if a directory
	// appears under that name.
	return files, failed
}

// under says whether path is one of dirs or below one.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// reloadLocked reads every file, decides what is in force, and publishes a
// new catalog if that changed. manual is true for Reload.
func (s *Store) reloadLocked(manual bool) {
	files, failed := s.scan()
	// The documents of other sources load after every file, by source and
	// name: when a file and a document define the same policy at once, the
	// file's is the one in force.
	s.initScratch()
	clear(s.docData)
	clear(s.order)
	docData, order := s.docData, s.order
	paths := append(s.paths[:0], files...)
	for _, src := range sortedKeys(s.docs) {
		from := len(paths)
		for name, data := range s.docs[src] {
			docData[name] = data
			paths = append(paths, name)
		}
		slices.Sort(paths[from:])
	}
	s.paths = paths
	for i, p := range paths {
		order[p] = i
	}

	// Deleted files: gone from the walk, and not below an unreadable directory.
	for p, f := range s.files {
		if _, ok := order[p]; !ok && !under(p, failed) {
			if len(f.inForce) > 0 {
				s.log.WithField("file", p).Infof("file removed: %d policies withdrawn", len(f.inForce))
			}
			s.withdraw(f)
			delete(s.files, p)
		}
	}

	// Read each file; candidates are the valid versions not yet in force.
	var pending []*fileState
	for _, p := range paths {
		data, isDoc := docData[p]
		var err error
		if !isDoc {
			data, err = os.ReadFile(p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			if f := s.files[p]; f != nil { // removed since the walk
				s.withdraw(f)
				delete(s.files, p)
			}
			continue
		}
		if f := s.load(p, data, isDoc, err); f != nil {
			pending = append(pending, f)
		}
	}
	clear(docData) // the contents loaded: not kept here either
	// The claims again from what is in force (they are kept as it
	// changes; a full reload starts them over).
	clear(s.claims)
	for _, f := range s.files {
		for _, p := range f.inForce {
			s.claims[p.Ref()] = p
		}
	}
	s.acceptPending(pending)
	s.publish(manual)
}

// reloadDocsLocked is UpdateDocuments' reload: only the documents named
// (put or removed) are loaded again, with the versions refused for a
// conflict, which a removal may let in; the files and the other documents
// stay as they are. With thousands of documents this is what keeps a
// change of one from costing a walk over all of them.
func (s *Store) reloadDocsLocked(docs map[string][]byte, names []string) {
	s.initScratch()
	var pending []*fileState
	for _, name := range names {
		data, ok := docs[name]
		if !ok {
			if f := s.files[name]; f != nil {
				s.withdraw(f)
				delete(s.files, name)
			}
			continue
		}
		if f := s.load(name, data, true, nil); f != nil && !slices.Contains(pending, f) {
			pending = append(pending, f)
		}
	}
	s.acceptPending(pending)
	s.publish(false)
}

// docSource is the source that holds document name, "" for a file.
func (s *Store) docSource(name string) string {
	for src, docs := range s.docs {
		if _, ok := docs[name]; ok {
			return src
		}
	}
	return ""
}

func (s *Store) initScratch() {
	if s.docData == nil {
		s.docData, s.order = map[string][]byte{}, map[string]int{}
		s.claims, s.conflicted = map[string]*policy.Policy{}, map[*fileState]bool{}
	}
}

// load reads one file's or document's content (data; readErr, a file's
// read error): an invalid version is rejected, one that means what is in
// force is accepted, and a valid one not in force is returned, a candidate.
func (s *Store) load(p string, data []byte, isDoc bool, readErr error) *fileState {
	f := s.files[p]
	if f == nil {
		f = &fileState{path: p}
		s.files[p] = f
	}
	var sum [32]byte
	if readErr != nil {
		sum = sha256.Sum256([]byte("read error: " + readErr.Error()))
		f.result = &policy.FileResult{File: p, Issues: []*policy.Issue{{Level: policy.LevelError, File: p, Message: readErr.Error()}}}
	} else if isDoc && data == nil && f.result != nil {
		// A document loaded before and not put since: no hash
		// (thousands of them at each change of one).
		sum = f.sum
	} else {
		sum = sha256.Sum256(data)
		if f.result == nil || sum != f.sum {
			f.result = policy.LoadBytes(p, data)
		}
	}
	f.sum = sum
	f.status = f.result.Status()
	if f.status == policy.FileInvalid {
		s.reject(f, &FileError{File: p, Issues: f.result.Errors()})
		return nil
	}
	if samePolicies(f.inForce, f.result.Policies) {
		s.accept(f)
		return nil
	}
	return f
}

// acceptPending accepts the candidates (in load order), and those refused
// for a conflict before, whose policies no other file has in force; it
// repeats while an acceptance (which may withdraw policies) lets another
// in. In force, no name is ever defined twice. What is left is refused for
// the conflict.
func (s *Store) acceptPending(pending []*fileState) {
	for f := range s.conflicted {
		// Still the current version, still valid, still not in force.
		if s.files[f.path] == f && len(f.result.Errors()) == 0 && !samePolicies(f.inForce, f.result.Policies) && !slices.Contains(pending, f) {
			pending = append(pending, f)
		}
	}
	clear(s.conflicted)
	// In load order: the files as the last full reload found them, then
	// each source's documents by name (a full reload's order too).
	type rank struct {
		src  string // "" for a file, which comes first
		file int
		name string
	}
	rankOf := func(f *fileState) rank {
		if src := s.docSource(f.path); src != "" {
			return rank{src: src, name: f.path}
		}
		return rank{file: s.order[f.path]}
	}
	sort.Slice(pending, func(i, j int) bool {
		a, b := rankOf(pending[i]), rankOf(pending[j])
		return cmp.Or(cmp.Compare(a.src, b.src), cmp.Compare(a.file, b.file), cmp.Compare(a.name, b.name)) < 0
	})
	claims := s.claims
	conflicts := map[*fileState][]*policy.Issue{}
	for progress := true; progress; {
		progress = false
		rest := pending[:0]
		for _, f := range pending {
			var issues []*policy.Issue
			for _, p := range f.result.Policies {
				if prev, ok := claims[p.Ref()]; ok && prev.Source.File != f.path {
					issues = append(issues, &policy.Issue{Level: policy.LevelError, File: f.path, Line: p.Source.Line, Field: "metadata.name",
						Message: fmt.Sprintf("%s is already defined at %s:%d", p.Ref(), prev.Source.File, prev.Source.Line)})
				}
			}
			if len(issues) > 0 {
				conflicts[f] = issues
				rest = append(rest, f)
				continue
			}
			s.withdraw(f)
			f.inForce = f.result.Policies
			f.status = f.result.Status() // a version refused before for a conflict
			s.added = append(s.added, f.inForce...)
			for _, p := range f.inForce {
				claims[p.Ref()] = p
			}
			s.accept(f)
			progress = true
		}
		pending = rest
	}
	for _, f := range pending {
		f.status = policy.FileInvalid
		s.reject(f, &FileError{File: f.path, Issues: conflicts[f]})
		s.conflicted[f] = true
	}
}

// withdraw records that f's policies in force leave the catalog.
func (s *Store) withdraw(f *fileState) {
	for _, p := range f.inForce {
		s.removed = append(s.removed, p.Ref())
		if c := s.claims[p.Ref()]; c != nil && c.Source.File == f.path {
			delete(s.claims, p.Ref())
		}
	}
}

// accept marks f's current content as in force.
func (s *Store) accept(f *fileState) {
	if f.err != nil || f.reported != "" {
		s.log.WithField("file", f.path).Infof("file accepted: %d policies in force", len(f.inForce))
	}
	f.err = nil
	f.reported = ""
	if f.warned != f.sum {
		f.warned = f.sum
		for _, is := range f.result.Issues {
			switch is.Level {
			case policy.LevelWarning:
				s.log.WithField("file", f.path).Warn(is.Error())
			case policy.LevelNotice:
				s.log.WithField("file", f.path).Debug(is.Error())
			}
		}
	}
}

// reject keeps f's last good version in force and reports the rejection
// unless this very rejection was reported already.
func (s *Store) reject(f *fileState, err *FileError) {
	f.err = err
	key := string(f.sum[:]) + "\x00" + err.Error()
	if key == f.reported {
		return
	}
	f.reported = key
	log := s.log.WithField("file", f.path)
	for _, is := range err.Issues {
		log.Error(is.Error())
	}
	log.Errorf("file rejected: keeping its last good version (%d policies) in force", len(f.inForce))
	if s.opts.Rejected != nil {
		s.opts.Rejected(f.path, err)
	}
}

// samePolicies says whether two versions of a file mean the same policies,
// at the same places.
func samePolicies(a, b []*policy.Policy) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Digest != b[i].Digest || a[i].Ref() != b[i].Ref() || a[i].Source != b[i].Source {
			return false
		}
	}
	return true
}

// publish builds the catalog of the policies in force and delivers it if it
// differs from the last one (or, the first time, installs it).
func (s *Store) publish(manual bool) {
	// With thousands of documents (the API server's) this runs at every
	// change of one: the catalog is updated with what changed (added,
	// removed), not rebuilt; maps only when needed.
	added, removed := s.added, s.removed
	s.added, s.removed = nil, nil
	old := s.catalog.Load()
	var cat *policy.Catalog
	var err error
	rebuild := func() (*policy.Catalog, error) {
		var all []*policy.Policy
		for _, f := range s.files {
			all = append(all, f.inForce...)
		}
		return policy.NewCatalog(all)
	}
	switch {
	case old == nil:
		cat, err = rebuild()
	case len(added)+len(removed) > 0:
		if cat, err = old.Update(added, removed); err != nil {
			// Cannot happen (no name is in force twice); were it to, the
			// catalog is rebuilt from what is in force rather than later
			// changes being applied to a catalog that missed this one.
			s.log.WithError(err).Error("internal error: updating the catalog; rebuilding it")
			cat, err = rebuild()
		}
	}
	if err != nil {
		// Cannot happen: no name is ever in force twice. Keep the old catalog.
		s.log.WithError(err).Error("internal error: building the catalog")
		return
	}
	inCatalog := cat
	if inCatalog == nil {
		inCatalog = old
	}
	// The policies of rejected files that nothing keeps in force: a pod
	// naming one is told why it is missing.
	rejected := map[string]string{}
	var inForce map[string]bool
	for _, f := range s.files {
		if f.err == nil || f.result == nil || len(f.result.Errors()) == 0 {
			continue
		}
		if inForce == nil {
			inForce = make(map[string]bool, inCatalog.Len())
			for _, p := range inCatalog.Policies() {
				inForce[p.Ref()] = true
			}
		}
		for _, ref := range f.result.Rejected {
			if !inForce[ref] {
				rejected[ref] = f.result.Errors()[0].Error()
			}
		}
	}
	changed := s.changed
	s.changed = time.Time{}
	if old != nil && cat == nil && maps.Equal(rejected, s.rejected) {
		if manual {
			s.log.Infof("reload: no change (%d policies)", old.Len())
		}
		return
	}
	if cat == nil { // only what is rejected changed: a new catalog all the same
		if cat, err = old.Update(nil, nil); err != nil {
			s.log.WithError(err).Error("internal error: building the catalog")
			return
		}
	}
	for ref, why := range rejected {
		cat.SetRejected(ref, why)
	}
	s.rejected = rejected
	first := old == nil
	// A catalog a subscriber has not read gives way to this one, which
	// then stands for its change too: measured from the earlier.
	for _, ch := range s.subs {
		select {
		case stale := <-ch:
			if c := stale.Changed(); !c.IsZero() && (changed.IsZero() || c.Before(changed)) {
				changed = c
			}
		default:
		}
	}
	cat.SetChanged(changed)
	s.catalog.Store(cat)
	s.log.Infof("policy catalog: %d policies from %d files and documents", cat.Len(), len(s.files))
	if first {
		return
	}
	if s.opts.OnChange != nil {
		s.opts.OnChange(cat)
	}
	for _, ch := range s.subs {
		select {
		case ch <- cat:
		default:
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
