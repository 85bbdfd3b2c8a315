package receiver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkHandle measures the receiver's own cost for one 1 KB TOTVS CRM webhook
// (header auth, JSON parse, schema validation, event id), without dedupe and with an
// in-memory store; the real stores have their own benchmarks.
func BenchmarkHandle(b *testing.B) {
	body := samples(b, "totvs_crm")["opportunity-won.json"]
	body = append(body[:len(body)-2], []byte(`,"notes":"`+string(bytes.Repeat([]byte("x"), 470))+`"}`)...)
	for _, dd := range []bool{false, true} {
		name := "no_dedupe"
		o := Options{Source: "totvs_crm", Auth: keyAuth, Schema: "totvs_crm", EventID: []string{"json:/eventId"}, Dedupe: -1}
		if dd {
			name = "mem_dedupe"
			o.Dedupe, o.Store = 0, &memStore{}
		}
		rc := mustNew(b, o)
		next := func(w http.ResponseWriter, r *http.Request, ev *Event) error { w.WriteHeader(200); return nil }
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bb := body
				if dd {
					bb = bytes.Replace(body, []byte("6f1c2a9e"), []byte(strconv.Itoa(10000000+i)), 1)
				}
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bb))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set(ValidationKeyHeader, "k3y")
				w := httptest.NewRecorder()
				if _, err := rc.Handle(w, r, next); err != nil || w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, reused across iterations so that
// the benchmark counts the receiver's allocations only.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHotPath is the issue-12 budget: for the TOTVS CRM and Ploomes samples, "handle"
// is one whole request through the receiver as the sync route runs it (auth, read, checks,
// decode, validation, event id, dedupe bookkeeping on an in-memory store, hand-off), and
// "validate" is the schema validator alone on the same document. Everything but Validate
// costs handle − validate. The request and writer are reused, so their allocations do not
// count.
func BenchmarkHotPath(b *testing.B) {
	for _, sender := range []string{"totvs_crm", "ploomes"} {
		var body []byte
		for _, v := range samples(b, sender) {
			body = v
		}
		p := Presets[sender]
		store := &memStore{m: map[string]string{}}
		rc := mustNew(b, Options{Source: sender, Auth: keyAuth, Schema: p.Schema, EventID: p.EventID, Dedupe: 0, Store: store})
		next := func(w http.ResponseWriter, r *http.Request, ev *Event) error { w.WriteHeader(200); return nil }
		b.Run(sender+"/handle", func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(ValidationKeyHeader, "k3y")
			w := &discardWriter{h: http.Header{}}
			rd := bytes.NewReader(nil)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rd.Reset(body)
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
				w.code = 0
				clear(store.m) // every request is a new event: a claim and a commit each
				if _, err := rc.Handle(w, r, next); err != nil || w.code != 200 {
					b.Fatal(w.code)
				}
			}
		})
		b.Run(sender+"/validate", func(b *testing.B) {
			doc, pr := parseJSON(body, true, false, nil)
			if pr != nil {
				b.Fatal(pr.Detail)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := rc.schema.Validate(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
