package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Level says how serious an Issue is.
type Level string

// Issue levels. Only errors make a file invalid.
const (
	LevelError   Level = "error"
	LevelWarning Level = "warning"
	LevelNotice  Level = "notice"
	// LevelHint says how nri-armor reads something that is right as
	// written (a rule path that is commonly a symlink). `armorctl
	// validate` prints hints; the daemon does not log them, and a policy
	// with hints is as clean as one without.
	LevelHint Level = "hint"
)

// Issue is one finding about a file: an error, a warning or a notice.
// Its text form is FILE:LINE: FIELD: MESSAGE.
type Issue struct {
	Level   Level  `json:"level"`
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (i *Issue) Error() string {
	var b strings.Builder
	b.WriteString(i.File)
	if i.Line > 0 {
		b.WriteString(":" + strconv.Itoa(i.Line))
	}
	b.WriteString(": ")
	if i.Field != "" {
		b.WriteString(i.Field + ": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// FileStatus is a file's verdict.
type FileStatus string

// File verdicts, as `armorctl validate` counts them.
const (
	FileValid   FileStatus = "valid"   // at least one policy, no error
	FileInvalid FileStatus = "invalid" // at least one error: nothing of the file is used
	FileSkipped FileStatus = "skipped" // no KubeArmor document, no error
)

// FileResult is what loading one file produced. A file with any error is
// rejected whole: Policies is then empty, never a partial set.
type FileResult struct {
	File     string    `json:"file"`
	Policies []*Policy `json:"-"`
	Issues   []*Issue  `json:"issues"`
	// Rejected are the refs (Policy.Ref) of the KubeArmor documents of an
	// invalid file that name themselves: none is in force from this
	// version, and a pod naming one is told why (Catalog.SetRejected).
	Rejected []string `json:"-"`
}

// Status is valid, invalid or skipped.
func (r *FileResult) Status() FileStatus {
	if len(r.Errors()) > 0 {
		return FileInvalid
	}
	if len(r.Policies) == 0 {
		return FileSkipped
	}
	return FileValid
}

// Errors returns the error-level issues.
func (r *FileResult) Errors() []*Issue { return r.level(LevelError) }

// Warnings returns the warning-level issues.
func (r *FileResult) Warnings() []*Issue { return r.level(LevelWarning) }

func (r *FileResult) level(l Level) []*Issue {
	var out []*Issue
	for _, i := range r.Issues {
		if i.Level == l {
			out = append(out, i)
		}
	}
	return out
}

// Err returns the file's first error, or nil.
func (r *FileResult) Err() error {
	if errs := r.Errors(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// LoadFile reads and validates one policy file.
func LoadFile(path string) *FileResult {
	data, err := os.ReadFile(path)
	if err != nil {
		return &FileResult{File: path, Issues: []*Issue{{Level: LevelError, File: path, Message: err.Error()}}}
	}
	return LoadBytes(path, data)
}

// IsPolicyFile says whether a directory walk should read this file.
func IsPolicyFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return (ext == ".yaml" || ext == ".yml") && !IsHidden(filepath.Base(name))
}

// IsHidden says whether a directory walk passes over a file or directory:
// names starting with '.' are editors' temporary files or a Kubernetes
// ConfigMap's "..data" copies, which would load every policy twice.
func IsHidden(name string) bool { return strings.HasPrefix(name, ".") && name != "." && name != ".." }

// LoadPaths loads files and, recursively, the .yaml/.yml files of directories,
// in lexical order. A policy defined again in a later file makes that later
// file invalid: two definitions of one name must never be merged silently.
func LoadPaths(paths ...string) []*FileResult { return Dedupe(loadPaths(paths)) }

// Dedupe makes invalid, in place, every file that defines a policy an
// earlier valid file of results defines, and drops the policies of every
// invalid file. It returns results.
func Dedupe(results []*FileResult) []*FileResult {
	out := results
	seen := map[string]*Policy{}
	for _, r := range out {
		for _, p := range r.Policies {
			if prev, dup := seen[p.Ref()]; dup {
				r.Issues = append(r.Issues, &Issue{Level: LevelError, File: r.File, Line: p.Source.Line, Field: "metadata.name",
					Message: fmt.Sprintf("%s is already defined at %s:%d", p.Ref(), prev.Source.File, prev.Source.Line)})
			}
		}
		if r.Err() != nil {
			r.Policies = nil
			continue
		}
		for _, p := range r.Policies {
			seen[p.Ref()] = p
		}
	}
	return out
}

// Policies returns the policies of every valid file.
func Policies(results []*FileResult) []*Policy {
	var out []*Policy
	for _, r := range results {
		out = append(out, r.Policies...)
	}
	return out
}

func loadPaths(paths []string) []*FileResult {
	var out []*FileResult
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			out = append(out, &FileResult{File: p, Issues: []*Issue{{Level: LevelError, File: p, Message: err.Error()}}})
			continue
		}
		if !info.IsDir() {
			out = append(out, LoadFile(p))
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && IsHidden(d.Name()) {
				return filepath.SkipDir
			}
			if !d.IsDir() && IsPolicyFile(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			out = append(out, &FileResult{File: p, Issues: []*Issue{{Level: LevelError, File: p, Message: err.Error()}}})
		}
		sort.Strings(files)
		for _, f := range files {
			out = append(out, LoadFile(f))
		}
	}
	return out
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlIssue turns a yaml.v3 syntax error into an Issue with its line.
func yamlIssue(file string, err error, offset int) *Issue {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") {
			// yaml.v3 reports its parser's errors at the 0-based line where
			// the unclosed construct began (scanner errors are 1-based).
			line++
		}
		return &Issue{Level: LevelError, File: file, Line: line + offset, Message: "yaml: " + m[2]}
	}
	return &Issue{Level: LevelError, File: file, Message: msg}
}

// LoadBytes parses and validates the documents of one file. It never panics:
// whatever the input, the result is policies or issues.
func LoadBytes(file string, data []byte) (res *FileResult) {
	res = &FileResult{File: file}
	defer func() {
		if r := recover(); r != nil {
			res.Policies = nil
			res.Issues = append(res.Issues, &Issue{Level: LevelError, File: file, Message: fmt.Sprintf("internal error while loading: %v", r)})
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		doc := new(yaml.Node)
		err := dec.Decode(doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.Issues = append(res.Issues, yamlIssue(file, err, 0))
			return res
		}
		docs = append(docs, doc)
	}
	if line := tabLine(data, docs); line > 0 {
		res.Issues = append(res.Issues, &Issue{Level: LevelError, File: file, Line: line,
			Message: "yaml: tab character used as indentation or separation (YAML whitespace must be spaces)"})
		return res
	}
	var policies []*Policy
	byRef := map[string]*Policy{}
	var refs []string
	for _, doc := range docs {
		p, issues := loadDocument(file, doc)
		res.Issues = append(res.Issues, issues...)
		if ref := docRef(doc); ref != "" {
			refs = append(refs, ref)
		}
		if p == nil {
			continue
		}
		if prev, dup := byRef[p.Ref()]; dup {
			res.Issues = append(res.Issues, &Issue{Level: LevelError, File: file, Line: p.Source.Line, Field: "metadata.name",
				Message: fmt.Sprintf("%s is already defined at line %d", p.Ref(), prev.Source.Line)})
		}
		byRef[p.Ref()] = p
		policies = append(policies, p)
	}
	if len(res.Errors()) == 0 {
		res.Policies = policies
	} else {
		res.Rejected = refs
	}
	return res
}

// docRef is the Ref of a KubeArmor document as its YAML names it, valid
// or not; "" when it names no kind or name.
func docRef(doc *yaml.Node) string {
	if doc.Kind == 0 || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return ""
	}
	root := doc.Content[0]
	kind := Kind(scalarField(root, "kind"))
	var meta *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "metadata" && root.Content[i+1].Kind == yaml.MappingNode {
			meta = root.Content[i+1]
		}
	}
	if meta == nil {
		return ""
	}
	p := &Policy{Kind: kind, Metadata: Metadata{Name: scalarField(meta, "name"), Namespace: cmp.Or(scalarField(meta, "namespace"), "default")}}
	switch {
	case p.Metadata.Name == "":
		return ""
	case kind == KindPolicy, kind == KindClusterPolicy, kind == KindHostPolicy:
		return p.Ref()
	}
	return ""
}

func scalarField(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// loadDocument decodes one YAML document. Documents that are not KubeArmor
// policies yield a notice and no policy.
func loadDocument(file string, doc *yaml.Node) (*Policy, []*Issue) {
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, nil
	}
	root := doc.Content[0]
	notice := func(format string, args ...any) []*Issue {
		return []*Issue{{Level: LevelNotice, File: file, Line: root.Line, Message: fmt.Sprintf(format, args...)}}
	}
	if root.Kind != yaml.MappingNode {
		return nil, notice("skipped: document is not a mapping")
	}
	kind := Kind(scalarField(root, "kind"))
	api := scalarField(root, "apiVersion")
	switch kind {
	case KindPolicy, KindClusterPolicy, KindHostPolicy:
	default:
		if kind == "" {
			return nil, notice("skipped: document has no kind")
		}
		return nil, notice("skipped: %s %s is not a KubeArmor policy", api, kind)
	}
	d := newDecoder()
	p := &Policy{Source: Source{File: file, Line: root.Line}}
	d.decode(doc, reflect.ValueOf(p).Elem(), "")
	v := &validator{decoder: d, p: p}
	if len(d.errs) == 0 {
		v.validate()
	}
	issues := append(d.errs, d.warnings...)
	for _, e := range issues {
		e.File = file
	}
	sort.SliceStable(issues, func(i, j int) bool { return issues[i].Line < issues[j].Line })
	if len(d.errs) > 0 {
		return nil, issues
	}
	p.Digest = policyDigest(p)
	p.ref = p.computeRef()
	return p, issues
}

// policyDigest hashes what a policy means, not how it was written.
func policyDigest(p *Policy) string {
	b, err := json.Marshal(struct {
		Kind      Kind
		Name      string
		Namespace string
		Spec      Spec
	}{p.Kind, p.Metadata.Name, p.Metadata.Namespace, p.Spec})
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Ref names a policy: Kind/namespace/name (namespace empty for csp and hsp).
// The loader computes it once: catalogs of thousands sort by it.
func (p *Policy) Ref() string {
	if p.ref != "" {
		return p.ref
	}
	return p.computeRef()
}

func (p *Policy) computeRef() string {
	if p.Kind == KindPolicy {
		return string(p.Kind) + "/" + p.Metadata.Namespace + "/" + p.Metadata.Name
	}
	return string(p.Kind) + "/" + p.Metadata.Name
}

// tabLine returns the first line where a tab is used as YAML whitespace:
// in the indentation, or between a value and a comment or the line's end.
// Parsers disagree on the latter, and a tab that looks like spaces in an
// editor hides where a value ends; Kubernetes tooling warns about both, so
// nri-armor rejects them with the line. Tabs inside block scalars (|, >)
// and inside quoted strings are content and pass.
func tabLine(data []byte, docs []*yaml.Node) int {
	if !bytes.ContainsRune(data, '\t') {
		return 0
	}
	// A block scalar's content runs from the line after its header to the
	// line before the next node; counting its value's line breaks would miss
	// lines that folding (>) joined.
	var starts []int
	var scalars []*yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line > 0 {
			starts = append(starts, n.Line)
		}
		if n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			scalars = append(scalars, n)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for _, d := range docs {
		walk(d)
	}
	sort.Ints(starts)
	lines := strings.Count(string(data), "\n") + 1
	block := map[int]bool{}
	for _, n := range scalars {
		end := lines + 1
		if i := sort.SearchInts(starts, n.Line+1); i < len(starts) {
			end = starts[i]
		}
		for l := n.Line + 1; l < end; l++ {
			block[l] = true
		}
	}
	for i, line := range strings.Split(string(data), "\n") {
		if block[i+1] || !strings.Contains(line, "\t") {
			continue
		}
		quote := byte(0)
		for j := 0; j < len(line); j++ {
			c := line[j]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				} else if c == '\\' && quote == '"' {
					j++
				}
			case c == '#' && (j == 0 || line[j-1] == ' ' || line[j-1] == '\t'):
				j = len(line) // the rest is a comment
			case c == '"' || c == '\'':
				if j == 0 || strings.ContainsRune(" \t:-[{,", rune(line[j-1])) {
					quote = c
				}
			case c == '\t':
				rest := strings.TrimLeft(line[j:], " \t")
				if strings.TrimLeft(line[:j], " \t") == "" || rest == "" || rest[0] == '#' {
					return i + 1
				}
			}
		}
	}
	return 0
}
