package receiver

import (
	"bytes"
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
