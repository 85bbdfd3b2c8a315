package receiver

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func addSamples(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "samples", "*", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{}`, `[]`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `[[[[1e999999]]]]`, "{\"a\":\"\xff\"}", `{"a":1} x`, `  `, `"x"`, `-0.0e-0`, `{"a":{"b":[1,{"a":1}]},"b":2}`, `{"id":1,"ID":2}`, `{"\u0049d":1,"id":2}`} {
		f.Add([]byte(s))
	}
}

// The JSON path (precheck, then the decoder) never panics; what it accepts is valid JSON
// without duplicate keys, and every refusal carries an offset inside the body.
func FuzzParseJSON(f *testing.F) {
	addSamples(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, p := parseJSON(body, true, false, nil)
		if p != nil {
			if p.Status != http.StatusBadRequest || p.Offset == nil || *p.Offset < 0 || *p.Offset > int64(len(body)) {
				t.Fatalf("bad refusal %+v for %q", p, body)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if _, p2 := parseJSON(body, false, false, nil); p2 != nil {
			t.Fatalf("check-only path refused what decoding accepted: %q: %v", body, p2)
		}
		// Case folding only refuses more, never less, and its refusals carry an offset too.
		if _, p3 := parseJSON(body, true, true, nil); p3 != nil && (p3.Offset == nil || *p3.Offset > int64(len(body))) {
			t.Fatalf("bad folded refusal %+v for %q", p3, body)
		}
		_ = doc
	})
}

// Event ids never panic and are deterministic, whatever the body and headers hold; a
// composite id tells an absent part from an empty one.
func FuzzEventID(f *testing.F) {
	addSamples(f)
	specs := [][]string{
		{"json:/eventId"},
		{"header:X-Id"},
		{"body_sha256"},
		{"json:/nome", "json:/processo", "json:/dataProduto", "json:/periodicidade", "json:/periodicidadeFinal"},
		{"json:/a/0/b~1c", "header:X-Id", "body_sha256"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, p := parseJSON(body, true, false, nil)
		if p != nil {
			doc = nil
		}
		r, _ := http.NewRequest("POST", "/", nil)
		r.Header.Set("X-Id", string(body[:min(len(body), 40)]))
		for _, src := range specs {
			s, err := newEventIDSpec(src)
			if err != nil {
				t.Fatal(err)
			}
			id1, ok1 := s.compute(r, body, doc)
			id2, ok2 := s.compute(r, body, doc)
			if id1 != id2 || ok1 != ok2 {
				t.Fatalf("%v: not deterministic", src)
			}
			if ok1 && (id1 == "" || len(id1) > maxIDLen+7) {
				t.Fatalf("%v: id %q", src, id1)
			}
		}
	})
}
