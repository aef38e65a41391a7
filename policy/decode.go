package policy

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// decoder fills Go values from a YAML node tree, strictly: unknown fields,
// wrong types and missing required fields are errors that carry the line and
// the field path (spec.file.matchDirectories[0].recurive). It records the line
// of every path it visits so that later semantic checks can cite lines too.
//
// It walks yaml.Node itself, rather than using yaml.v3's Decode, because
// yaml.v3 reports neither field paths nor every error of a document at once.
type decoder struct {
	errs     []*Issue
	warnings []*Issue
	lines    map[string]int
	nulls    map[string]bool // paths whose value was an explicit null (`severity:`)
	// texts locates the multi-line strings (spec.apparmor): the line of
	// their first line, and whether each of their lines is a line of the
	// file (a literal block). A one-line string is on its path's line.
	texts map[string]TextSource
	// budget bounds the nodes visited, so that alias expansion ("billion
	// laughs") cannot make a small file expensive.
	budget int
}

const nodeBudget = 1 << 20

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, nulls: map[string]bool{}, texts: map[string]TextSource{}, budget: nodeBudget}
}

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Issue{Level: LevelError, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnAt(line int, path, format string, args ...any) {
	d.warnings = append(d.warnings, &Issue{Level: LevelWarning, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) hintAt(line int, path, format string, args ...any) {
	d.warnings = append(d.warnings, &Issue{Level: LevelHint, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

// line returns the line recorded for path, or for its nearest recorded parent.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

type fieldInfo struct {
	index    []int
	required bool
}

// zero resets the field in struct value v, so that a repeated field replaces
// rather than merges.
func (f fieldInfo) zero(v reflect.Value) {
	fv := v.FieldByIndex(f.index)
	fv.Set(reflect.Zero(fv.Type()))
}

type structInfo struct {
	fields map[string]fieldInfo
	order  []string // yaml names, for required-field checks in a stable order
}

var structCache sync.Map // reflect.Type → *structInfo

func infoFor(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	si := &structInfo{fields: map[string]fieldInfo{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "-" || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int{}, prefix...), i)
			if strings.Contains(opts, "inline") {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			si.fields[name] = fieldInfo{index: idx, required: strings.Contains(opts, "required")}
			si.order = append(si.order, name)
		}
	}
	walk(t, nil)
	structCache.Store(t, si)
	return si
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%s %s", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
		}
	}
	return "an unknown node"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var ignoredType = reflect.TypeFor[Ignored]()

// decode fills v (settable) from n; path names n in error messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n.Line, path, "document too large or too deeply aliased")
		}
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n.Line, path, "unresolved alias")
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if path != "" {
		if _, seen := d.lines[path]; !seen {
			d.lines[path] = n.Line
		}
		if isNull(n) {
			d.nulls[path] = true
		}
	}
	if v.Type() == ignoredType {
		// Accepted and ignored (status, managedFields …): keep nothing.
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(k.Line, path, "expected a string key, got %s", kindName(k))
				continue
			}
			kp := path + "." + k.Value
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.warnAt(k.Line, kp, "duplicate key: this value replaces the earlier one")
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, kp)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.fail(n.Line, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
		switch {
		case n.Style&yaml.LiteralStyle != 0:
			d.texts[path] = TextSource{Line: n.Line + 1, Exact: true} // the text starts below the '|'
		case n.Style&yaml.FoldedStyle != 0:
			d.texts[path] = TextSource{Line: n.Line + 1}
		case strings.Contains(n.Value, "\n"):
			d.texts[path] = TextSource{Line: n.Line}
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n.Line, path, "expected true or false, got %s", kindName(n))
			return
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			d.fail(n.Line, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(n.Line, path, "expected an integer, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.fail(n.Line, path, "expected an integer, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("policy: decoder has no case for %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "expected a mapping, got %s", kindName(n))
		return
	}
	si := infoFor(v.Type())
	seen := map[string]int{} // field → line of its first occurrence
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "expected a field name, got %s", kindName(k))
			continue
		}
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		f, ok := si.fields[k.Value]
		if !ok {
			d.fail(k.Line, fp, "unknown field")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			// Kubernetes reads the last occurrence and drops the earlier
			// ones; KubeArmor users got that behaviour, so it stays, loudly.
			d.warnAt(k.Line, fp, "duplicate field: this value replaces the one at line %d (the earlier one is ignored)", first)
			f.zero(v)
		} else {
			seen[k.Value] = k.Line
		}
		d.lines[fp] = k.Line
		d.decode(val, v.FieldByIndex(f.index), fp)
	}
	for _, name := range si.order {
		if _, ok := seen[name]; si.fields[name].required && !ok {
			fp := name
			if path != "" {
				fp = path + "." + name
			}
			d.fail(n.Line, fp, "required field missing")
		}
	}
}
