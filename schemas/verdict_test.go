package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// The embedded schemas were rewritten for jsonschema v5's cost (fewer schema nodes visited
// per object, no in-place subschemas where a type union says the same). The rewrite must
// not change a single verdict: TestRewrittenSchemasKeepVerdicts validates every document of
// a corpus against each schema as it was (testdata/before) and as it is, and fails on the
// first document they disagree on. The corpus: the senders' samples; every single
// mutation of them (each value replaced by each of a set of edge values, each member
// removed, each property any schema names added with each edge value, arrays emptied,
// grown and wrapped); the receiver's JSON fuzz corpus; and, with HOOKGATE_VERDICT_N=<n>,
// n random chains of up to four mutations per schema (bench/schemas.sh runs it long).

// senders maps each embedded schema to the sample directory of the documents it judges.
var senders = map[string]string{
	"ploomes": "ploomes", "totvs_crm": "totvs_crm", "sintegre": "sintegre", "rubeus": "rubeus",
	"rubeus_servicos_contato": "rubeus_servicos", "rubeus_servicos_evento": "rubeus_servicos",
}

func decode(t testing.TB, b []byte) (any, bool) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // as the receiver decodes: numbers keep their text
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

func compileBoth(t testing.TB, name string) (before, after *jsonschema.Schema) {
	t.Helper()
	c, err := newCompiler(os.DirFS("testdata/before"))
	if err != nil {
		t.Fatal(err)
	}
	before, err = c.Compile("https://hookgate.dev/schemas/" + name + ".json")
	if err != nil {
		t.Fatalf("the schema before: %v", err)
	}
	after, err = Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return before, after
}

// edges are the values every node is replaced with.
var edges = []any{nil, true, false, json.Number("0"), json.Number("1"), json.Number("-1"), json.Number("1.5"),
	json.Number("1e2"), json.Number("12345678901234567890"), "", "0", "1", "x", "abc@example.com", "2025-03-11",
	"2025-03-11 10:00", "2025-03-11T09:15:42-03:00", "2024-02-29T23:59:60Z", "2023-02-29T10:00:00Z", "123.456.789-09",
	"https://x", "6f1c2a9e-1b2c-4d5e-8f90-123456789abc", strings.Repeat("z", 70),
	map[string]any{}, map[string]any{"id": "1"}, map[string]any{"id": json.Number("2")}, map[string]any{"FieldKey": "k"},
	[]any{}, []any{"x"}, []any{map[string]any{}}, []any{map[string]any{"id": "1"}}}

// addedEdges are the values a property a schema names is added with: one of each JSON
// type (and a fraction, a date-like and an id-like string), since the added member's
// schema is what judges it.
var addedEdges = []any{nil, true, json.Number("1"), json.Number("1.5"), "x", "2025-03-11", map[string]any{}, map[string]any{"id": "1"}, []any{}, []any{"x"}}

// propertyNames are the member names any embedded schema names: added to every object.
func propertyNames(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	re := regexp.MustCompile(`"([A-Za-z][A-Za-z0-9_]*)"\s*:\s*\{`)
	files, _ := filepath.Glob("testdata/before/*.json")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range re.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
	}
	for _, k := range []string{"properties", "$defs", "items", "not", "if", "then", "else"} {
		delete(seen, k)
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = clone(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = clone(x)
		}
		return s
	}
	return v
}

// mutations calls f with every single mutation of doc (a fresh copy each time).
func mutations(doc any, names []string, f func(any)) {
	// paths: every node, as a list of steps (string keys, int indexes).
	var paths [][]any
	var walk func(v any, p []any)
	walk = func(v any, p []any) {
		paths = append(paths, append([]any(nil), p...))
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(x, append(p, k))
			}
		case []any:
			for i, x := range v {
				if i < 2 { // the first elements stand for the rest
					walk(x, append(p, i))
				}
			}
		}
	}
	walk(doc, nil)
	at := func(root any, p []any) (parent any, last any) {
		v := root
		for i, s := range p {
			if i == len(p)-1 {
				return v, s
			}
			switch s := s.(type) {
			case string:
				v = v.(map[string]any)[s]
			case int:
				v = v.([]any)[s]
			}
		}
		return nil, nil
	}
	set := func(parent, last, val any) {
		switch last := last.(type) {
		case string:
			parent.(map[string]any)[last] = val
		case int:
			parent.([]any)[last] = val
		}
	}
	for _, p := range paths {
		for _, e := range edges {
			c := clone(doc)
			if len(p) == 0 {
				f(clone(e))
				continue
			}
			parent, last := at(c, p)
			set(parent, last, clone(e))
			f(c)
		}
		c := clone(doc)
		if len(p) > 0 {
			parent, last := at(c, p)
			if k, ok := last.(string); ok {
				delete(parent.(map[string]any), k) // the member removed
				f(c)
			}
		}
		// The node itself: objects get every named property; arrays are emptied, grown,
		// and wrapped; anything is wrapped in an array.
		c = clone(doc)
		node := c
		if len(p) > 0 {
			parent, last := at(c, p)
			switch last := last.(type) {
			case string:
				node = parent.(map[string]any)[last]
			case int:
				node = parent.([]any)[last]
			}
		}
		switch n := node.(type) {
		case map[string]any:
			for _, name := range names {
				if _, has := n[name]; has {
					continue
				}
				for _, e := range addedEdges {
					c2 := clone(c)
					n2 := resolve(c2, p).(map[string]any)
					n2[name] = clone(e)
					f(c2)
				}
			}
		case []any:
			for _, grown := range [][]any{{}, append(clone(n).([]any), clone(n).([]any)[:min(1, len(n))]...)} {
				c2 := clone(c)
				if len(p) == 0 {
					f(grown)
					continue
				}
				parent, last := at(c2, p)
				set(parent, last, grown)
				f(c2)
			}
		}
		c = clone(doc)
		if len(p) == 0 {
			f([]any{c})
		} else {
			parent, last := at(c, p)
			var cur any
			switch last := last.(type) {
			case string:
				cur = parent.(map[string]any)[last]
			case int:
				cur = parent.([]any)[last]
			}
			set(parent, last, []any{cur})
			f(c)
		}
	}
}

func resolve(root any, p []any) any {
	v := root
	for _, s := range p {
		switch s := s.(type) {
		case string:
			v = v.(map[string]any)[s]
		case int:
			v = v.([]any)[s]
		}
	}
	return v
}

// fuzzCorpus is the receiver's JSON fuzz corpus, decoded (what does not decode is skipped).
func fuzzCorpus(t testing.TB) []any {
	t.Helper()
	files, _ := filepath.Glob("../receiver/testdata/fuzz/FuzzParseJSON/*")
	var out []any
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					if v, ok := decode(t, []byte(s)); ok {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

func samplesOf(t testing.TB, dir string) []any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "examples", "samples", dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no samples in %s", dir)
	}
	var out []any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := decode(t, b)
		if !ok {
			t.Fatalf("%s does not decode", f)
		}
		out = append(out, v)
	}
	return out
}

// differ validates doc against both schemas; it returns a description when they
// disagree, and whether the schema before accepts doc.
func differ(before, after *jsonschema.Schema, doc any) (string, bool) {
	eb, ea := before.Validate(doc), after.Validate(doc)
	if (eb == nil) == (ea == nil) {
		return "", eb == nil
	}
	b, _ := json.Marshal(doc)
	return fmt.Sprintf("before: %v\nafter: %v\ndocument: %s", eb, ea, b), eb == nil
}

func TestRewrittenSchemasKeepVerdicts(t *testing.T) {
	names := propertyNames(t)
	fuzz := fuzzCorpus(t)
	if len(fuzz) < 1 {
		t.Fatalf("the fuzz corpus gave %d documents", len(fuzz))
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			before, after := compileBoth(t, name)
			var valid, invalid int
			seen := 0
			check := func(doc any) {
				seen++
				if raceEnabled && seen%16 != 0 {
					return // the race detector's run takes a sixteenth: the schemas have no goroutines
				}
				d, ok := differ(before, after, doc)
				if d != "" {
					t.Fatalf("the rewritten %s changes a verdict:\n%s", name, d)
				}
				if ok {
					valid++
				} else {
					invalid++
				}
			}
			base := samplesOf(t, senders[name])
			for _, doc := range base {
				if before.Validate(doc) != nil && !strings.HasPrefix(name, "rubeus_servicos") {
					t.Fatalf("a %s sample is invalid under the schema before", name)
				}
				check(doc)
				mutations(doc, names, check)
			}
			for _, other := range senders {
				for _, doc := range samplesOf(t, other) {
					check(doc)
				}
			}
			for _, doc := range fuzz {
				check(doc)
			}
			// Random chains of mutations, as many as asked.
			n, _ := strconv.Atoi(os.Getenv("HOOKGATE_VERDICT_N"))
			rng := rand.New(rand.NewPCG(uint64(len(name)), 27))
			for i := 0; i < n; i++ {
				doc := clone(base[rng.IntN(len(base))])
				for k := 0; k < 1+rng.IntN(4); k++ {
					var all []any
					mutations(doc, names[:0], func(m any) { all = append(all, m) })
					if len(all) == 0 {
						break
					}
					doc = all[rng.IntN(len(all))]
				}
				check(doc)
			}
			// Not vacuous: the corpus has documents each schema accepts and refuses.
			if !raceEnabled && (valid < 20 || invalid < 100) {
				t.Fatalf("%s: %d valid, %d invalid documents: the corpus does not exercise the schema", name, valid, invalid)
			}
			t.Logf("%s: %d documents agreed (%d valid, %d invalid)", name, valid+invalid, valid, invalid)
		})
	}
}

// The differential test fails on a schema that changes a verdict: a rewrite that dropped a
// "required" is caught.
func TestVerdictTestCatchesAChangedSchema(t *testing.T) {
	b, err := os.ReadFile("testdata/before/ploomes.json")
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	loose := strings.Replace(string(b), `"required": ["Action", "Entity"]`, `"required": ["Action"]`, 1)
	if loose == string(b) {
		t.Fatal("the test's edit did not apply")
	}
	if err := c.AddResource("mem://loose.json", strings.NewReader(loose)); err != nil {
		t.Fatal(err)
	}
	changed, err := c.Compile("mem://loose.json")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := compileBoth(t, "ploomes")
	caught := false
	for _, doc := range samplesOf(t, "ploomes") {
		mutations(doc, propertyNames(t), func(m any) {
			if d, _ := differ(before, changed, m); !caught && d != "" {
				caught = true
			}
		})
	}
	if !caught {
		t.Fatal("the corpus did not tell a schema without required Entity from the original")
	}
}
