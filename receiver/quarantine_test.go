package receiver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

func compileSchema(t testing.TB, s string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	if err := c.AddResource("s.json", stringsReader(s)); err != nil {
		t.Fatal(err)
	}
	sc, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestUnnamedFieldsFollowTheSchemasShape(t *testing.T) {
	sc := compileSchema(t, `{
		"type": "object",
		"properties": {
			"id": {"type": "integer"},
			"new": {"$ref": "#/$defs/rec"},
			"items": {"type": "array", "items": {"allOf": [{"properties": {"sku": {}}}, {"properties": {"qty": {}}}]}},
			"free": {"type": "object"},
			"self": {"$ref": "#"}
		},
		"patternProperties": {"^x-": {}},
		"$defs": {"rec": {"anyOf": [{"properties": {"Id": {}}}, {"properties": {"Name": {}}}]}}
	}`)
	sh := newShape(sc)
	doc, p := parseJSON([]byte(`{"id":1,"x-trace":"t","new":{"Id":1,"Name":"a","CPF":"b"},
		"items":[{"sku":"a","qty":1},{"sku":"b","color":"red"}],"free":{"anything":1},
		"self":{"id":2,"deep":{"ignored":1}},"top":{"below":1},"a/b~c":1}`), true, false, nil)
	if p != nil {
		t.Fatal(p.Detail)
	}
	got := sh.unnamed(doc)
	slices.Sort(got)
	want := []string{"/a~1b~0c", "/items/*/color", "/new/CPF", "/self/deep", "/top"}
	if !slices.Equal(got, want) {
		t.Fatalf("unnamed = %q; want %q", got, want)
	}
	if un := sh.unnamed(map[string]any{"id": 1}); un != nil {
		t.Fatalf("a body with only named fields: %q", un)
	}
}

// A route with on_invalid quarantine holds what the schema refuses (202 with the header and
// the violations), refuses what fails before the schema as before, answers 503 when the
// quarantine is full or away, and in a release refuses (422) what is still invalid; Drift
// sees violations and unnamed fields of accepted requests.
func TestQuarantineHoldsWhatTheSchemaRefuses(t *testing.T) {
	schema := writeFile(t, `{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}`)
	var held []Held
	var holdErr error
	var drifts []Drift
	rc := mustNew(t, Options{Auth: keyAuth, Schema: schema, EventID: []string{"json:/id"}, Dedupe: -1,
		Quarantine: func(r *http.Request, h Held) (string, error) {
			if holdErr != nil {
				return "", holdErr
			}
			h.Body = append([]byte(nil), h.Body...)
			held = append(held, h)
			return "q_1", nil
		},
		Drift: func(d Drift) { drifts = append(drifts, Drift{Violations: d.Violations, Unnamed: d.Unnamed}) }})
	handed := 0
	next := func(w http.ResponseWriter, r *http.Request, ev *Event) error { handed++; return nil }
	do := func(body string, key string, rp *Replay) (*httptest.ResponseRecorder, Result) {
		r := post([]byte(body), ValidationKeyHeader, key)
		if rp != nil {
			r = r.WithContext(WithReplay(r.Context(), *rp))
		}
		w := httptest.NewRecorder()
		res, err := rc.Handle(w, r, next)
		if err != nil {
			t.Fatal(err)
		}
		return w, res
	}
	w, res := do(`{"id":"7","extra":1}`, "k3y", nil)
	if w.Code != 202 || w.Header().Get("Webhook-Quarantined") != "true" || res.Reason != problem.ReasonQuarantined || res.Quarantined != "q_1" {
		t.Fatalf("invalid body: %d %s %+v", w.Code, w.Body, res)
	}
	if p := problemOf(t, w); p.Instance != "q_1" || len(p.Errors) != 1 || p.Errors[0].Pointer != "/id" {
		t.Fatalf("202 body = %+v", p)
	}
	if len(held) != 1 || string(held[0].Body) != `{"id":"7","extra":1}` || held[0].EventID != "7" || handed != 0 {
		t.Fatalf("held = %+v, handed %d", held, handed)
	}
	if len(drifts) != 1 || drifts[0].Violations[0].Pointer != "/id" || !slices.Equal(drifts[0].Unnamed, []string{"/extra"}) {
		t.Fatalf("drift = %+v", drifts)
	}
	// Accepted with an unnamed field: Drift sees it.
	if w, _ := do(`{"id":1,"extra":2}`, "k3y", nil); w.Code != 200 || handed != 1 || len(drifts) != 2 || drifts[1].Violations != nil {
		t.Fatalf("valid body: %d, handed %d, drifts %+v", w.Code, handed, drifts)
	}
	// Before the schema: refused as before.
	for _, c := range []struct {
		body, key string
		code      int
	}{{`{"id":"7"}`, "wrong", 401}, {`{"id":`, "k3y", 400}} {
		if w, _ := do(c.body, c.key, nil); w.Code != c.code {
			t.Fatalf("%s with key %s: %d; want %d", c.body, c.key, w.Code, c.code)
		}
	}
	if len(held) != 1 {
		t.Fatal("a request refused before the schema was held")
	}
	// Full, away.
	for _, c := range []struct {
		err    error
		reason problem.Reason
	}{{quarantine.ErrFull, problem.ReasonQuarantineFull}, {errors.New("redis away"), problem.ReasonStoreUnavailable},
		{quarantine.ErrTooLarge, problem.ReasonSchema}} {
		holdErr = c.err
		w, res := do(`{"id":"8"}`, "k3y", nil)
		if c.err == quarantine.ErrTooLarge { // never holdable: refused for good, as in reject mode
			if w.Code != 422 || res.Reason != c.reason || w.Header().Get("Webhook-Quarantined") != "" {
				t.Fatalf("too large for the quarantine: %d %s", w.Code, w.Body)
			}
			continue
		}
		if w.Code != 503 || res.Reason != c.reason || w.Header().Get("Retry-After") == "" || w.Header().Get("Webhook-Quarantined") != "" {
			t.Fatalf("hold error %v: %d %s", c.err, w.Code, w.Body)
		}
	}
	holdErr = nil
	// A release: still invalid is a 422, not held again; release anyway skips the schema.
	n, nd := len(held), len(drifts)
	if w, res := do(`{"id":"9"}`, "", &Replay{Release: true}); w.Code != 422 || res.Reason != problem.ReasonSchema || len(held) != n {
		t.Fatalf("release of an invalid body: %d %+v", w.Code, res)
	}
	if w, _ := do(`{"id":"9"}`, "", &Replay{Release: true, SkipSchema: true}); w.Code != 200 || handed != 2 {
		t.Fatalf("release anyway: %d, handed %d", w.Code, handed)
	}
	if len(drifts) != nd {
		t.Fatalf("a replay was counted in the drift report: %d drifts, want %d", len(drifts), nd)
	}
}

func BenchmarkUnnamedOnPloomes(b *testing.B) {
	rc := mustNew(b, Options{Source: "ploomes", Auth: keyAuth, Schema: Presets["ploomes"].Schema, Dedupe: -1, Drift: func(Drift) {}})
	var body []byte
	for _, v := range samples(b, "ploomes") {
		body = v
	}
	doc, p := parseJSON(body, true, false, nil)
	if p != nil {
		b.Fatal(p.Detail)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rc.shape.unnamed(doc)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
