package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/dedupe"
)

func samples(t testing.TB, sender string) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "examples", "samples", sender, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no samples for %s", sender)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

type captured struct {
	body   []byte
	length int64
	ev     Event
	calls  int
}

func handle(t *testing.T, rc *Receiver, req *http.Request, status int) (*httptest.ResponseRecorder, *captured, Result) {
	t.Helper()
	c := &captured{}
	w := httptest.NewRecorder()
	res, err := rc.Handle(w, req, func(w http.ResponseWriter, r *http.Request, ev *Event) error {
		c.calls++
		c.body, _ = io.ReadAll(r.Body)
		c.length = r.ContentLength
		c.ev = *ev
		w.WriteHeader(status)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, c, res
}

func post(body []byte, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func mustNew(t testing.TB, o Options) *Receiver {
	t.Helper()
	rc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func problemOf(t *testing.T, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, w.Body)
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != w.Code || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not match status %d", p, w.Code)
	}
	return p
}

var keyAuth = []AuthSpec{{Kind: AuthValidationKey, Secret: "k3y"}}

func TestSamplesPassEverySchemaAndReachNextIntact(t *testing.T) {
	for _, sender := range []string{"ploomes", "totvs_crm", "sintegre", "rubeus"} {
		p := Presets[sender]
		rc := mustNew(t, Options{Source: sender, Auth: keyAuth, Schema: p.Schema, EventID: p.EventID, Dedupe: -1})
		for name, body := range samples(t, sender) {
			w, c, res := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 204)
			if w.Code != 204 || c.calls != 1 {
				t.Fatalf("%s/%s: status %d calls %d body %s", sender, name, w.Code, c.calls, w.Body)
			}
			if !bytes.Equal(c.body, body) || c.length != int64(len(body)) {
				t.Fatalf("%s/%s: next got %d bytes (ContentLength %d), want the %d bytes sent", sender, name, len(c.body), c.length, len(body))
			}
			if c.ev.ID == "" || !c.ev.Verified || c.ev.Source != sender || res.Reason != problem.ReasonAccepted {
				t.Fatalf("%s/%s: event %+v result %+v", sender, name, c.ev, res)
			}
		}
	}
}

func TestWrongPayloadsFailWithPointers(t *testing.T) {
	cases := []struct {
		schema, body string
		pointers     []string
	}{
		{"ploomes", `{"Action": 3, "Entity": "Contacts", "AccountId": "57", "New": {"Id": "x"}}`, []string{"/Action", "/AccountId", "/New/Id"}},
		{"ploomes", `{"Entity": "Contacts"}`, []string{""}},
		{"totvs_crm", `{"eventId": "not-a-guid", "timestamp": "2022-05-06", "workflow": {}, "trigger": {"id": "x"}, "source": {"object": {"id": "1"}}}`,
			[]string{"/eventId", "/timestamp", "/workflow", "/source"}},
		{"sintegre", `{"nome": "IPDO", "processo": "x", "dataProduto": "", "periodicidade": "20/02/2025", "url": "ftp://x"}`,
			[]string{"/dataProduto", "/periodicidade", "/url"}},
		{"rubeus", `[{"id": "1", "nome": "sem contato"}]`, []string{"/0"}},
		{"rubeus", `[]`, []string{""}},
		{"rubeus", `[{"id": "341", "cpf": "abc"}]`, []string{"/0/cpf"}},
		{"rubeus_servicos_evento", `[{"id": "1", "tipo": {"id": "2"}}]`, []string{"/0"}},
	}
	for _, tc := range cases {
		rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthNone}}, Schema: tc.schema, Dedupe: -1})
		w, c, _ := handle(t, rc, post([]byte(tc.body)), 200)
		if w.Code != 422 || c.calls != 0 {
			t.Fatalf("%s %s: status %d, calls %d", tc.schema, tc.body, w.Code, c.calls)
		}
		p := problemOf(t, w)
		got := map[string]bool{}
		var collect func([]Violation)
		collect = func(vs []Violation) {
			for _, e := range vs {
				got[e.Pointer] = true
				if e.Message == "" {
					t.Fatalf("violation without message: %+v", e)
				}
				collect(e.Errors)
			}
		}
		collect(p.Errors)
		for _, ptr := range tc.pointers {
			if !got[ptr] {
				t.Errorf("%s %s: no violation at %q; got %+v", tc.schema, tc.body, ptr, p.Errors)
			}
		}
	}
}

func TestRubeusAcceptsSingleRecordAndServicosShapes(t *testing.T) {
	for name, body := range samples(t, "rubeus") {
		var arr []json.RawMessage
		_ = json.Unmarshal(body, &arr)
		if p, err := Validate("rubeus", arr[0]); err != nil || p != nil {
			t.Fatalf("%s as a single record: %v %+v", name, err, p)
		}
	}
}

// Rubeus Serviços: what Rubeus pulls from a customer's endpoint (not what its webhooks send).
// Both official "JSON de Envio" examples pass; realistic wrong records fail with pointers;
// more than 1000 records fail Serviços' limit.
func TestRubeusServicosSchemas(t *testing.T) {
	s := samples(t, "rubeus_servicos")
	for schema, file := range map[string]string{"rubeus_servicos_contato": "contato-envio.json", "rubeus_servicos_evento": "evento-envio.json"} {
		if p, err := Validate(schema, s[file]); err != nil || p != nil {
			t.Fatalf("%s on the official example %s: %v %+v", schema, file, err, p)
		}
	}
	// The webhooks' records are not Serviços records.
	if p, _ := Validate("rubeus_servicos_contato", samples(t, "rubeus")["contato.json"]); p == nil {
		t.Fatal("a Rubeus webhook Contato passed as a Serviços contact")
	}
	ok := `{"codigo":"1","nome":"Ana","emailPrincipal":"ana@x.com.br"}`
	for _, tc := range []struct{ schema, record, pointer string }{
		{"rubeus_servicos_contato", `{"nome":"Ana","emailPrincipal":"a@x.br"}`, "/0"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana"}`, "/0"}, // neither phone nor e-mail
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","cep":"33840610"}`, "/0/cep"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","dataNascimento":"19/05/1998"}`, "/0/dataNascimento"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","emails":[{"email":"a@x.br"}]}`, "/0/emails/0"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","numero":"12A"}`, "/0/numero"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","aluno":"sim"}`, "/0/aluno"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","deficiencias":[{"tipos":["1"]}]}`, "/0/deficiencias/0"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","camposPersonalizados":["x"]}`, "/0/camposPersonalizados"},
		{"rubeus_servicos_contato", `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br","apelido":"Aninha"}`, "/0"},
		{"rubeus_servicos_evento", `{"descricao":"x"}`, "/0"},
		{"rubeus_servicos_evento", `{"codContato":"1","data":"2025-03-01"}`, "/0/data"},
		{"rubeus_servicos_evento", `{"codContato":"1","notaEnem":"alta"}`, "/0/notaEnem"},
		{"rubeus_servicos_evento", `{"codContato":"1","compareceuAtividade":"talvez"}`, "/0/compareceuAtividade"},
	} {
		p, err := Validate(tc.schema, []byte("["+tc.record+"]"))
		if err != nil || p == nil || p.Status != 422 {
			t.Errorf("%s %s: want 422, got %v %+v", tc.schema, tc.record, err, p)
			continue
		}
		found := false
		var walk func([]Violation)
		walk = func(vs []Violation) {
			for _, v := range vs {
				found = found || v.Pointer == tc.pointer
				walk(v.Errors)
			}
		}
		walk(p.Errors)
		if !found {
			t.Errorf("%s %s: no violation at %s: %+v", tc.schema, tc.record, tc.pointer, p.Errors)
		}
	}
	// Numbers and booleans as Rubeus writes them (strings), or as JSON; dates empty or set.
	for _, rec := range []string{ok, `{"codigo":"1","nome":"Ana","telefonePrincipal":"55(31)26582323","numero":342,"aluno":true,"canhoto":"1","anoFormacao":2022,"cep":"33840-610","baseLegal":"1","assinaturas":[{"id":"3"}],"dataNascimento":""}`} {
		if p, _ := Validate("rubeus_servicos_contato", []byte("["+rec+"]")); p != nil {
			t.Errorf("%s: %+v", rec, p.Errors)
		}
	}
	if p, _ := Validate("rubeus_servicos_evento", []byte(`[{"codContato":"1","data":"2025-03-01 14:30:00","notaEnem":710,"compareceuAtividade":true,"camposPersonalizados":[]}]`)); p != nil {
		t.Errorf("evento with JSON types: %+v", p.Errors)
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(ok+",", 1001), ",") + "]"
	if p, _ := Validate("rubeus_servicos_contato", []byte(many)); p == nil || p.Status != 422 {
		t.Fatalf("1001 records should fail Serviços' limit of 1000: %+v", p)
	}
	if p, _ := Validate("rubeus_servicos_contato", []byte(strings.Replace(many, ok+",", "", 1))); p != nil {
		t.Fatalf("1000 records are Serviços' limit, not over it: %+v", p.Errors)
	}
}

func TestAnswerTable(t *testing.T) {
	rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthBasic, User: "ons", Secret: "pw"}}, Schema: "sintegre", MaxBody: 1024, Dedupe: -1})
	okBody := samples(t, "sintegre")["ipdo-daily.json"]
	auth := BasicAuthHeader("ons", "pw")

	r := httptest.NewRequest(http.MethodGet, "/hook", nil)
	w, _, _ := handle(t, rc, r, 200)
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
	problemOf(t, w)

	w, _, _ = handle(t, rc, post(okBody, "Authorization", BasicAuthHeader("ons", "wrong")), 200)
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong password: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	p1 := problemOf(t, w)
	w, _, _ = handle(t, rc, post(okBody, "Authorization", BasicAuthHeader("wrong", "pw")), 200)
	p2 := problemOf(t, w)
	w, _, _ = handle(t, rc, post(okBody), 200)
	p3 := problemOf(t, w)
	if p1.Detail != p2.Detail || p2.Detail != p3.Detail {
		t.Fatalf("401 bodies differ by which part was wrong: %q %q %q", p1.Detail, p2.Detail, p3.Detail)
	}

	big := append([]byte(`{"nome":"`), bytes.Repeat([]byte("a"), 2000)...)
	big = append(big, `"}`...)
	w, c, _ := handle(t, rc, post(big, "Authorization", auth), 200)
	if w.Code != 413 || c.calls != 0 {
		t.Fatalf("big body: %d", w.Code)
	}
	problemOf(t, w)
	// Without Content-Length (chunked), the read stops at the limit too.
	req := post(nil, "Authorization", auth)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(big)), -1
	if w, _, _ = handle(t, rc, req, 200); w.Code != 413 {
		t.Fatalf("chunked big body: %d", w.Code)
	}

	for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded", "application/json; charset=latin1"} {
		req := post(okBody, "Authorization", auth)
		req.Header.Set("Content-Type", ct)
		if w, _, _ = handle(t, rc, req, 200); w.Code != 415 {
			t.Fatalf("Content-Type %q: %d", ct, w.Code)
		}
		problemOf(t, w)
	}
	for _, ct := range []string{"application/json; charset=UTF-8", "application/cloudevents+json"} {
		req := post(okBody, "Authorization", auth)
		req.Header.Set("Content-Type", ct)
		if w, _, _ = handle(t, rc, req, 200); w.Code != 200 {
			t.Fatalf("Content-Type %q: %d %s", ct, w.Code, w.Body)
		}
	}

	w, _, _ = handle(t, rc, post([]byte(`{"nome": "x",, }`), "Authorization", auth), 200)
	p := problemOf(t, w)
	if w.Code != 400 || p.Offset == nil || *p.Offset != 13 {
		t.Fatalf("bad JSON: %d %+v", w.Code, p)
	}
	w, _, _ = handle(t, rc, post([]byte(`{"a":1} {"b":2}`), "Authorization", auth), 200)
	if p = problemOf(t, w); w.Code != 400 || p.Offset == nil || *p.Offset != 8 {
		t.Fatalf("trailing data: %d %+v", w.Code, p)
	}
	w, _, _ = handle(t, rc, post([]byte(`{"nome":`), "Authorization", auth), 200)
	if p = problemOf(t, w); w.Code != 400 || p.Offset == nil || *p.Offset != 8 {
		t.Fatalf("truncated: %d %+v", w.Code, p)
	}

	w, _, _ = handle(t, rc, post([]byte(`{"nome": 1}`), "Authorization", auth), 200)
	if p = problemOf(t, w); w.Code != 422 || len(p.Errors) != 2 || p.Errors[1].Pointer != "/nome" {
		t.Fatalf("schema: %d %+v", w.Code, p)
	}
}

func TestHostileJSON(t *testing.T) {
	rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthNone}}, EventID: []string{"json:/id"}, Dedupe: -1})
	cases := map[string]string{
		"deep":        strings.Repeat("[", 100) + strings.Repeat("]", 100),
		"exponent":    `{"id": 1e999999}`,
		"overflow":    `{"id": 1.8e308}`,
		"overflow 2":  `{"id": [` + strings.Repeat("9", 99) + `e210]}`,
		"long number": `{"id": ` + strings.Repeat("9", 200) + `}`,
		"bad utf8":    "{\"id\": \"\xff\xfe\"}",
		"empty":       "",
	}
	for name, body := range cases {
		w, c, _ := handle(t, rc, post([]byte(body)), 200)
		if w.Code != 400 || c.calls != 0 {
			t.Fatalf("%s: %d", name, w.Code)
		}
		if p := problemOf(t, w); p.Offset == nil {
			t.Fatalf("%s: no offset", name)
		}
	}
	// Strings may hold brackets and numbers-like text without tripping the scanner.
	ok := `{"id": "[[[[1e999999]]]]", "n": [1.5e10, -2, 0.25]}`
	if w, c, _ := handle(t, rc, post([]byte(ok)), 200); w.Code != 200 || c.calls != 1 {
		t.Fatalf("ok body refused: %d %s", w.Code, w.Body)
	}
}

func TestAuthKinds(t *testing.T) {
	body := []byte(`{"a":1}`)
	type tc struct {
		spec AuthSpec
		good func(r *http.Request)
		bad  func(r *http.Request)
	}
	cases := []tc{
		{AuthSpec{Kind: AuthValidationKey, Secret: "vk"}, func(r *http.Request) { r.Header.Set(ValidationKeyHeader, "vk") },
			func(r *http.Request) { r.Header.Set(ValidationKeyHeader, "vk2") }},
		{AuthSpec{Kind: AuthHeader, Name: "x-api-key", Secret: "s3"}, func(r *http.Request) { r.Header.Set("X-Api-Key", "s3") },
			func(r *http.Request) { r.Header.Set("X-Api-Key", "s") }},
		{AuthSpec{Kind: AuthBearer, Secret: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") },
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok2") }},
		{AuthSpec{Kind: AuthBearer, Secret: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "tok") },
			func(r *http.Request) { r.Header.Set("Authorization", "Basic tok") }},
		{AuthSpec{Kind: AuthQuery, Name: "key", Secret: "q"}, func(r *http.Request) { r.URL.RawQuery = "key=q" },
			func(r *http.Request) { r.URL.RawQuery = "key=q&key=q" }},
		{AuthSpec{Kind: AuthBasic, User: "u", Secret: "p"}, func(r *http.Request) { r.Header.Set("Authorization", BasicAuthHeader("u", "p")) },
			func(r *http.Request) { r.Header.Set("Authorization", BasicAuthHeader("u", "p ")) }},
	}
	for i, c := range cases {
		rc := mustNew(t, Options{Auth: []AuthSpec{c.spec}, Dedupe: -1})
		r := post(body)
		c.good(r)
		if w, _, res := handle(t, rc, r, 200); w.Code != 200 || !res.Verified {
			t.Fatalf("case %d (%s): good credential refused: %d", i, c.spec.Kind, w.Code)
		}
		r = post(body)
		c.bad(r)
		if w, _, _ := handle(t, rc, r, 200); w.Code != 401 {
			t.Fatalf("case %d (%s): bad credential got %d", i, c.spec.Kind, w.Code)
		}
	}
	// Several lines: any one matches (rotation).
	rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthValidationKey, Secret: "old"}, {Kind: AuthValidationKey, Secret: "new"}}, Dedupe: -1})
	for _, k := range []string{"old", "new"} {
		if w, _, _ := handle(t, rc, post(body, ValidationKeyHeader, k), 200); w.Code != 200 {
			t.Fatalf("rotation key %s: %d", k, w.Code)
		}
	}
	// auth none passes, unverified.
	rc = mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthNone}}, Dedupe: -1})
	if _, c, res := handle(t, rc, post(body), 200); c.calls != 1 || res.Verified || c.ev.Verified {
		t.Fatalf("auth none: %+v", res)
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "auth none") {
		t.Fatalf("no auth line: err = %v", err)
	}
	if _, err := New(Options{Auth: []AuthSpec{{Kind: AuthNone}, {Kind: AuthBearer, Secret: "x"}}}); err == nil {
		t.Fatal("auth none with a credential should be an error")
	}
}

func TestUnauthenticatedBodyIsNotRead(t *testing.T) {
	rc := mustNew(t, Options{Auth: keyAuth, Dedupe: -1})
	r := post(nil)
	tr := &trackingReader{r: strings.NewReader(`{"a":1}`)}
	r.Body = io.NopCloser(tr)
	if w, _, _ := handle(t, rc, r, 200); w.Code != 401 || tr.n != 0 {
		t.Fatalf("status %d, %d bytes read", w.Code, tr.n)
	}
}

type trackingReader struct {
	r io.Reader
	n int
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += n
	return n, err
}

func TestEventIDs(t *testing.T) {
	sin := Presets["sintegre"].EventID
	spec, err := newEventIDSpec(sin)
	if err != nil {
		t.Fatal(err)
	}
	id := func(body string) string {
		doc, p := parseJSON([]byte(body), true, false, nil)
		if p != nil {
			t.Fatal(p)
		}
		v, ok := spec.compute(post([]byte(body)), []byte(body), doc)
		if !ok {
			t.Fatal("composite id missing")
		}
		return v
	}
	a := id(`{"nome":"IPDO","processo":"p","dataProduto":"20/02/2025","periodicidade":"2025-02-20T00:00:00","url":"https://x?token=1"}`)
	b := id(`{"nome":"IPDO","processo":"p","dataProduto":"20/02/2025","periodicidade":"2025-02-20T00:00:00","url":"https://x?token=2"}`)
	c := id(`{"nome":"IPDO","processo":"p","dataProduto":"20/02/2025","periodicidade":"2025-02-20T00:00:00","periodicidadeFinal":""}`)
	d := id(`{"nome":"IPDOp","processo":"","dataProduto":"20/02/2025","periodicidade":"2025-02-20T00:00:00"}`)
	if a != b {
		t.Fatal("the url token changed the SINtegre id")
	}
	if a == c {
		t.Fatal("absent and empty periodicidadeFinal collide")
	}
	if a == d {
		t.Fatal("moving bytes between parts collides")
	}

	single, _ := newEventIDSpec([]string{"json:/eventId"})
	if _, ok := single.compute(post(nil), nil, map[string]any{}); ok {
		t.Fatal("a missing single id must be reported missing")
	}
	if v, _ := single.compute(post(nil), nil, map[string]any{"eventId": json.Number("42")}); v != "42" {
		t.Fatalf("number id = %q", v)
	}
	esc, _ := newEventIDSpec([]string{"json:/a~1b/c~0d/1"})
	if v, _ := esc.compute(post(nil), nil, map[string]any{"a/b": map[string]any{"c~d": []any{"x", "y"}}}); v != "y" {
		t.Fatalf("escaped pointer = %q", v)
	}
	for _, bad := range []string{"json:", "json:x", "header:", "md5", "json:/a~2"} {
		if err := ParseEventIDSources([]string{bad}); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	// A missing single-source id while dedupe is on: a clear 400.
	st := &memStore{}
	rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthNone}}, EventID: []string{"header:X-Id"}, Store: st})
	w, calls, _ := handle(t, rc, post([]byte(`{}`)), 200)
	if w.Code != 400 || calls.calls != 0 || problemOf(t, w).Type != problemTypeBase+string(problem.ReasonMissingEventID) {
		t.Fatalf("missing id: %d %s", w.Code, w.Body)
	}
}

// memStore is a minimal in-memory dedupe.Store for the handler's unit tests; the real
// stores are tested by the conformance suite and the integration tests.
type memStore struct {
	mu   sync.Mutex
	m    map[string]string
	fail error
}

func (s *memStore) Claim(_ context.Context, k string, _ time.Duration) (dedupe.State, dedupe.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, "", s.fail
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	switch s.m[k] {
	case "p":
		return dedupe.Processed, "", nil
	case "":
		s.m[k] = "i"
		return dedupe.New, "t", nil
	}
	return dedupe.InFlight, "", nil
}
func (s *memStore) Commit(_ context.Context, k string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = "p"
	return nil
}
func (s *memStore) Release(_ context.Context, k string, _ dedupe.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[k] == "i" {
		delete(s.m, k)
	}
	return nil
}

func TestSyncDedupeSemantics(t *testing.T) {
	st := &memStore{}
	rc := mustNew(t, Options{Source: "totvs_crm", Auth: keyAuth, Schema: "totvs_crm", EventID: []string{"json:/eventId"}, Store: st})
	body := samples(t, "totvs_crm")["opportunity-won.json"]
	send := func(status int) (*httptest.ResponseRecorder, *captured) {
		w, c, _ := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), status)
		return w, c
	}
	if w, c := send(500); w.Code != 500 || c.calls != 1 {
		t.Fatalf("backend 500: %d", w.Code)
	}
	if w, c := send(200); w.Code != 200 || c.calls != 1 {
		t.Fatalf("retry after 500 must get through: %d calls %d", w.Code, c.calls)
	}
	w, c := send(200)
	if w.Code != 200 || c.calls != 0 || w.Header().Get("Webhook-Duplicate") != "true" {
		t.Fatalf("duplicate: %d calls %d headers %v", w.Code, c.calls, w.Header())
	}
	// In flight: 409 with Retry-After.
	st.m["totvs_crm:other"] = "i"
	body2 := bytes.Replace(body, []byte("6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20"), []byte("6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b21"), 1)
	st.m["totvs_crm:6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b21"] = "i"
	w, c, _ = handle(t, rc, post(body2, ValidationKeyHeader, "k3y"), 200)
	if w.Code != 409 || c.calls != 0 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("in flight: %d", w.Code)
	}
	problemOf(t, w)

	// A panic in next releases the claim.
	body3 := bytes.Replace(body, []byte("6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20"), []byte("6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b22"), 1)
	func() {
		defer func() { _ = recover() }()
		_, _ = rc.Handle(httptest.NewRecorder(), post(body3, ValidationKeyHeader, "k3y"), func(http.ResponseWriter, *http.Request, *Event) error {
			panic("boom")
		})
	}()
	if _, ok := st.m["totvs_crm:6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b22"]; ok {
		t.Fatal("a panic left the claim in place")
	}
	// An error from next releases too.
	_, _ = rc.Handle(httptest.NewRecorder(), post(body3, ValidationKeyHeader, "k3y"), func(http.ResponseWriter, *http.Request, *Event) error {
		return io.ErrUnexpectedEOF
	})
	if _, ok := st.m["totvs_crm:6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b22"]; ok {
		t.Fatal("an error left the claim in place")
	}
}

func TestStoreErrorRejectOrAccept(t *testing.T) {
	st := &memStore{fail: dedupe.ErrUnavailable}
	var logged []error
	body := samples(t, "totvs_crm")["opportunity-won.json"]
	rc := mustNew(t, Options{Auth: keyAuth, EventID: []string{"json:/eventId"}, Store: st, OnStoreError: func(err error) { logged = append(logged, err) }})
	w, c, res := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200)
	if w.Code != 503 || c.calls != 0 || w.Header().Get("Retry-After") == "" || res.Reason != problem.ReasonStoreUnavailable {
		t.Fatalf("reject: %d", w.Code)
	}
	rc = mustNew(t, Options{Auth: keyAuth, EventID: []string{"json:/eventId"}, Store: st, AcceptOnStoreError: true, OnStoreError: func(err error) { logged = append(logged, err) }})
	if w, c, _ = handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200); w.Code != 200 || c.calls != 1 {
		t.Fatalf("accept: %d", w.Code)
	}
	if len(logged) != 2 {
		t.Fatalf("store errors reported %d times, want 2", len(logged))
	}
	for _, e := range logged {
		if strings.Contains(e.Error(), "k3y") {
			t.Fatal("secret in an error")
		}
	}
}

// A value that matches none of its alternatives is one violation saying so, with the
// closest alternative's failures under it, not every branch's failures side by side.
func TestAlternativesAreGrouped(t *testing.T) {
	p, err := Validate("rubeus", []byte(`[{"id":"1","tipo":{"id":1},"emails":[{"email":5}]}]`))
	if err != nil || p == nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Errors)
	want := `[{"pointer":"","message":"matches none of the 2 alternatives of oneOf; the closest, alternative 1 (/$defs/record), fails with the errors listed",` +
		`"errors":[{"pointer":"/0","message":"matches none of the 4 alternatives of anyOf; the closest, alternative 1 (/$defs/contato), fails with the errors listed",` +
		`"errors":[{"pointer":"/0/emails","message":"expected object or null, but got array"}]}]}]`
	if string(b) != want {
		t.Fatalf("rubeus contato with a bad field:\n got %s\nwant %s", b, want)
	}
	p, _ = Validate("ploomes", []byte(`{"Action":"x","Entity":"y"}`))
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "none of the 2 alternatives of anyOf") ||
		len(p.Errors[0].Errors) != 1 || p.Errors[0].Errors[0].Message != "missing properties: 'New'" {
		t.Fatalf("ploomes without New or Old: %+v", p.Errors)
	}
}

// A feed's published records: one object or an array; each checked against the feed's
// schema; one bad record refuses the request, with its index in the pointers.
func TestFeedRecords(t *testing.T) {
	rs, err := NewRecords("rubeus_servicos_contato", 0)
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"codigo":"1","nome":"Ana","emailPrincipal":"a@x.br"}`
	recs, p := rs.Split([]byte(" [" + ok + ",\n" + ok + "] "))
	if p != nil || len(recs) != 2 || string(recs[1]) != ok {
		t.Fatalf("split: %q %+v", recs, p)
	}
	if recs, p = rs.Split([]byte(ok)); p != nil || len(recs) != 1 {
		t.Fatalf("one record: %q %+v", recs, p)
	}
	_, p = rs.Split([]byte("[" + ok + `,{"codigo":"2","nome":"Bia","emailPrincipal":"b@x.br","cep":"1"}]`))
	if p == nil || p.Status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != "/1/cep" || !strings.Contains(p.Detail, "record 1") {
		t.Fatalf("bad second record: %+v", p)
	}
	for _, bad := range []string{`[]`, `[1]`, `{"codigo":"1","codigo":"2"}`, `[` + ok} {
		if _, p := rs.Split([]byte(bad)); p == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := NewCredentials([]AuthSpec{{Kind: AuthHMAC, Scheme: "github", Secrets: []string{"s"}}}); err == nil {
		t.Error("hmac accepted for a feed's caller")
	}
}
