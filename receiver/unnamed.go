package receiver

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// maxUnnamed caps how many unnamed fields one request reports.
const maxUnnamed = 20

// maxShapes bounds the shape tree built from one schema (a pathological schema stops
// being followed past it: nothing below is reported).
const maxShapes = 10_000

// shape is what a schema says about the objects at one place of a document: the names
// it gives their fields (with the shape below each), its patternProperties, and the
// shape of array items. It merges every schema that applies there ($ref, allOf, anyOf,
// oneOf, if/then/else, …), so a field any of them names is named.
type shape struct {
	intern   *interned // the pointers reported, shared by the tree: reported again without allocating
	names    map[string]*shape
	patterns []patternShape
	extra    *shape // additionalProperties as a schema: fields it covers are still unnamed
	items    *shape
}

type patternShape struct {
	re    *regexp.Regexp
	below *shape
}

// describes tells whether the shape names any field: an object whose schema names none
// (a free-form map) has no fields a schema could be missing.
func (s *shape) describes() bool { return len(s.names) > 0 || len(s.patterns) > 0 }

// shapeBuilder builds a schema's shape tree, one node per set of schemas (so recursion
// through $ref ends), at most maxShapes of them.
type shapeBuilder struct {
	memo   map[string]*shape
	ids    map[*jsonschema.Schema]int
	intern *interned
}

// newShape returns the shape tree of root, or nil when root is nil.
func newShape(root *jsonschema.Schema) *shape {
	if root == nil {
		return nil
	}
	b := &shapeBuilder{memo: map[string]*shape{}, ids: map[*jsonschema.Schema]int{}, intern: &interned{m: map[string]string{}}}
	return b.build([]*jsonschema.Schema{root})
}

// maxInterned bounds the pointers a shape tree remembers.
const maxInterned = 1024

// interned remembers the pointers reported, so the usual ones cost no allocation.
type interned struct {
	mu sync.RWMutex
	m  map[string]string
}

func (in *interned) get(b []byte) string {
	in.mu.RLock()
	s, ok := in.m[string(b)] // no allocation for the lookup
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	in.mu.Lock()
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	in.mu.Unlock()
	return s
}

// closure returns the schemas that apply where ss do: ss and what they reference or
// combine, each once.
func closure(ss []*jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var add func(s *jsonschema.Schema)
	add = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		for _, c := range []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.DynamicRef, s.If, s.Then, s.Else} {
			add(c)
		}
		for _, l := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf} {
			for _, c := range l {
				add(c)
			}
		}
		for _, c := range s.DependentSchemas {
			add(c)
		}
	}
	for _, s := range ss {
		add(s)
	}
	return out
}

func (b *shapeBuilder) key(ss []*jsonschema.Schema) string {
	ids := make([]int, len(ss))
	for i, s := range ss {
		id, ok := b.ids[s]
		if !ok {
			id = len(b.ids)
			b.ids[s] = id
		}
		ids[i] = id
	}
	slices.Sort(ids)
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteByte(byte(id))
		sb.WriteByte(byte(id >> 8))
		sb.WriteByte(byte(id >> 16))
	}
	return sb.String()
}

func (b *shapeBuilder) build(ss []*jsonschema.Schema) *shape {
	all := closure(ss)
	if len(all) == 0 {
		return nil
	}
	k := b.key(all)
	if s, ok := b.memo[k]; ok {
		return s
	}
	if len(b.memo) >= maxShapes {
		return nil
	}
	s := &shape{intern: b.intern}
	b.memo[k] = s // before the children: a recursive schema finds it
	children := map[string][]*jsonschema.Schema{}
	var extra, items []*jsonschema.Schema
	patterns := map[*regexp.Regexp][]*jsonschema.Schema{}
	for _, x := range all {
		for name, c := range x.Properties {
			children[name] = append(children[name], c)
		}
		for re, c := range x.PatternProperties {
			patterns[re] = append(patterns[re], c)
		}
		if c, ok := x.AdditionalProperties.(*jsonschema.Schema); ok {
			extra = append(extra, c)
		}
		switch it := x.Items.(type) {
		case *jsonschema.Schema:
			items = append(items, it)
		case []*jsonschema.Schema:
			items = append(items, it...)
		}
		if c, ok := x.AdditionalItems.(*jsonschema.Schema); ok {
			items = append(items, c)
		}
		if x.Items2020 != nil {
			items = append(items, x.Items2020)
		}
		items = append(items, x.PrefixItems...)
	}
	if len(children) > 0 {
		s.names = make(map[string]*shape, len(children))
		for name, cs := range children {
			s.names[name] = b.build(cs)
		}
	}
	for re, cs := range patterns {
		s.patterns = append(s.patterns, patternShape{re: re, below: b.build(cs)})
	}
	if len(extra) > 0 {
		s.extra = b.build(extra)
	}
	if len(items) > 0 {
		s.items = b.build(items)
	}
	return s
}

// unnamed returns the JSON pointers (array indices as *) of the fields of doc that the
// shape's schema does not name, in objects whose schema names some; it does not look
// below an unnamed field. At most maxUnnamed, each once.
func (s *shape) unnamed(doc any) []string {
	if s == nil {
		return nil
	}
	var out []string
	var arr [128]byte
	buf := arr[:0]
	s.walk(doc, &buf, &out)
	return out
}

// walk looks at v, whose pointer is *ptr (appended to and cut back: one buffer).
func (s *shape) walk(v any, ptr *[]byte, out *[]string) {
	if s == nil || len(*out) >= maxUnnamed {
		return
	}
	n := len(*ptr)
	defer func() { *ptr = (*ptr)[:n] }()
	switch x := v.(type) {
	case map[string]any:
		if !s.describes() {
			if s.extra != nil {
				for k, c := range x {
					*ptr = appendToken((*ptr)[:n], k)
					s.extra.walk(c, ptr, out)
				}
			}
			return
		}
		for k, c := range x {
			*ptr = appendToken((*ptr)[:n], k)
			if below, ok := s.names[k]; ok {
				below.walk(c, ptr, out)
				continue
			}
			matched := false
			for _, p := range s.patterns {
				if p.re.MatchString(k) {
					matched = true
					p.below.walk(c, ptr, out)
				}
			}
			if !matched {
				if p := s.intern.get(*ptr); !slices.Contains(*out, p) && len(*out) < maxUnnamed {
					*out = append(*out, p)
				}
			}
		}
	case []any:
		if s.items == nil {
			return
		}
		*ptr = append((*ptr)[:n], "/*"...)
		for _, c := range x {
			s.items.walk(c, ptr, out)
		}
	}
}

// appendToken appends /token to a JSON pointer, escaped (RFC 6901).
func appendToken(ptr []byte, tok string) []byte {
	ptr = append(ptr, '/')
	for i := 0; i < len(tok); i++ {
		switch tok[i] {
		case '~':
			ptr = append(ptr, "~0"...)
		case '/':
			ptr = append(ptr, "~1"...)
		default:
			ptr = append(ptr, tok[i])
		}
	}
	return ptr
}
