package receiver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/transform"
)

func compileTransform(t *testing.T, src string) *transform.Transform {
	t.Helper()
	tr, err := transform.Compile(transform.Inbound, src)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// The hand-off reads the transformed body, its length and the headers the transform set;
// the result keeps the original and the transformed body; the event id is the original's.
func TestTransformHandsOnTheNewBody(t *testing.T) {
	src, err := os.ReadFile("../examples/transforms/ploomes-contact.cel")
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{}
	tr := compileTransform(t, `with_headers(`+string(src)+`, {"X-Entity": body.Entity})`)
	rc := mustNew(t, Options{Preset: "ploomes", Auth: keyAuth, Store: st, Transform: tr, KeepBody: 1 << 20, Route: "crm"})
	body := samples(t, "ploomes")["contact-update.json"]
	w, c, res := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200)
	if w.Code != 200 || c.calls != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !bytes.HasPrefix(c.body, []byte(`{"account":57,"changed":[`)) || c.length != int64(len(c.body)) || !bytes.Equal(c.ev.Body, c.body) {
		t.Fatalf("next read %s (ContentLength %d)", c.body, c.length)
	}
	if !bytes.Equal(res.Body, body) || !bytes.Equal(res.Transformed, c.body) || res.TransformedSize != len(c.body) {
		t.Errorf("result body %d bytes, transformed %s", len(res.Body), res.Transformed)
	}
	if res.EventID == "" || c.ev.ID != res.EventID || res.Reason != problem.ReasonAccepted {
		t.Errorf("event id %q / %q, outcome %s", c.ev.ID, res.EventID, res.Reason)
	}
	// The event id is computed on the original body: the same webhook is a duplicate.
	if w, c, _ := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200); c.calls != 0 || w.Header().Get("Webhook-Duplicate") != "true" {
		t.Errorf("repeat: %d calls, %d", c.calls, w.Code)
	}
}

func TestTransformHeaderReachesNext(t *testing.T) {
	rc := mustNew(t, Options{Preset: "ploomes", Auth: keyAuth, Dedupe: -1,
		Transform: compileTransform(t, `with_headers({"id": body.New.Id}, {"X-Entity": body.Entity, "X-Route": route})`)})
	var got string
	w := httptest.NewRecorder()
	_, err := rc.Handle(w, post(samples(t, "ploomes")["contact-update.json"], ValidationKeyHeader, "k3y"),
		func(w2 http.ResponseWriter, r *http.Request, ev *Event) error {
			got = r.Header.Get("X-Entity") + "/" + r.Header.Get("X-Route") + "/" + r.Header.Get("Content-Length")
			w2.WriteHeader(204)
			return nil
		})
	if err != nil || got != "Contacts/ploomes/14" {
		t.Errorf("next saw %q (%v)", got, err)
	}
}

// A transform that fails answers 500 transform_failed with CEL's error, hands nothing on,
// releases the claim (the sender's retry gets through once fixed) and keeps the request
// replayable.
func TestTransformFailure(t *testing.T) {
	st := &memStore{}
	o := Options{Preset: "ploomes", Auth: keyAuth, Store: st, KeepBody: 1 << 20,
		Transform: compileTransform(t, `{"id": body.New.Missing}`)}
	rc := mustNew(t, o)
	body := samples(t, "ploomes")["contact-update.json"]
	w, c, res := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200)
	if w.Code != 500 || c.calls != 0 {
		t.Fatalf("%d, %d calls", w.Code, c.calls)
	}
	p := problemOf(t, w)
	if p.Type != problemTypeBase+string(problem.ReasonTransformFailed) || !bytes.Contains([]byte(p.Detail), []byte("no such key: Missing")) {
		t.Errorf("problem %+v", p)
	}
	if res.Reason != problem.ReasonTransformFailed || res.Status != 500 || !res.Passed || res.Problem == nil || res.Transformed != nil {
		t.Errorf("result %+v", res)
	}
	o.Transform = compileTransform(t, `{"id": body.New.Id}`) // fixed
	rc = mustNew(t, o)
	if w, c, _ := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200); w.Code != 200 || string(c.body) != `{"id":2630362}` {
		t.Errorf("after the fix: %d %s", w.Code, c.body)
	}
}

// BenchmarkTransformOnHotPath is BenchmarkHotPath's ploomes "handle" with a typical
// transform (a few fields picked, one computed) and with the README's Ploomes example: the
// difference to "handle" is what a transform adds to one request (it reads the document
// the schema validation decoded).
func BenchmarkTransformOnHotPath(b *testing.B) {
	body := samples(b, "ploomes")["contact-update.json"]
	src, err := os.ReadFile("../examples/transforms/ploomes-contact.cel")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, src string }{
		{"none", ""},
		{"typical", `{"id": body.New.Id, "name": body.New.LegalName, "account": body.AccountId, "kind": body.Entity + "." + body.Action, "fields": body.New.OtherProperties}`},
		{"ploomes_example", string(src)},
	} {
		o := Options{Preset: "ploomes", Auth: keyAuth, Dedupe: -1}
		if c.src != "" {
			tr, err := transform.Compile(transform.Inbound, c.src)
			if err != nil {
				b.Fatal(err)
			}
			o.Transform = tr
		}
		rc := mustNew(b, o)
		next := func(w http.ResponseWriter, r *http.Request, ev *Event) error { w.WriteHeader(200); return nil }
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(ValidationKeyHeader, "k3y")
			w := &discardWriter{h: http.Header{}}
			rd := bytes.NewReader(nil)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				rd.Reset(body)
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
				w.code = 0
				if _, err := rc.Handle(w, r, next); err != nil || w.code != 200 {
					b.Fatal(w.code)
				}
			}
		})
	}
}

// Numbers reach the transform exactly as the inbound core decoded them (json.Number): an
// integer past 2^53 keeps every digit whether it is passed through or computed on.
func TestTransformNumbersAtTheEdges(t *testing.T) {
	rc := mustNew(t, Options{Auth: keyAuth, Dedupe: -1, EventID: []string{"json:/id"},
		Transform: compileTransform(t, `{"same": body.n, "next": body.n + 1, "nested": body.m, "f": body.f * 2.0, "neg": body.z}`)})
	body := []byte(`{"id":"a","n":9007199254740993,"m":{"big":12345678901234567890,"e":1e300},"f":0.5,"z":-0}`)
	_, c, res := handle(t, rc, post(body, ValidationKeyHeader, "k3y"), 200)
	want := `{"f":1,"neg":0,"nested":{"big":12345678901234567890,"e":1e300},"next":9007199254740994,"same":9007199254740993}`
	if string(c.body) != want {
		t.Errorf("got  %s\nwant %s (%s)", c.body, want, res.Reason)
	}
}
