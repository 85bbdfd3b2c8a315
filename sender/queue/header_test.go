package queue_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/hookgate/hookgate/sender/queue"
)

// webhookHeader is the header an async route keeps of a sender's request.
func webhookHeader() http.Header {
	return http.Header{
		"Content-Type":    {"application/json"},
		"User-Agent":      {"TOTVS-CRM-Webhook/2.1"},
		"Accept-Encoding": {"gzip"},
		"X-Request-Id":    {"7f1c2e4a-9b1d-4c55-8a8e-1d2f3a4b5c6d"},
		"X-Forwarded-For": {"203.0.113.7", "10.0.0.2"},
		"Traceparent":     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
}

func TestHeaderRoundTrips(t *testing.T) {
	for _, h := range []http.Header{webhookHeader(), {"X-Empty": {}}, {"X-Blank": {""}}, {"Ü": {"ä\x00b"}}} {
		enc := queue.EncodeHeader(h)
		got, err := queue.DecodeHeader(enc)
		if err != nil || !reflect.DeepEqual(got, h) {
			t.Fatalf("round trip of %v: got %v, err %v", h, got, err)
		}
		if queue.EncodeHeader(got) != enc {
			t.Fatalf("encoding of %v is not stable", h)
		}
	}
	if queue.EncodeHeader(nil) != "" {
		t.Fatal("an empty header is not encoded as nothing")
	}
	if h, err := queue.DecodeHeader(""); h != nil || err != nil {
		t.Fatalf("nothing decoded as %v, %v", h, err)
	}
}

// A value appended to one key's values does not change another key's.
func TestDecodedHeaderValuesAreApart(t *testing.T) {
	h, err := queue.DecodeHeader(queue.EncodeHeader(http.Header{"A": {"1"}, "B": {"2"}}))
	if err != nil {
		t.Fatal(err)
	}
	h["A"] = append(h["A"], "x")
	if !reflect.DeepEqual(h["B"], []string{"2"}) {
		t.Fatalf("B = %v after appending to A", h["B"])
	}
}

// Stores written by earlier releases hold the header as JSON.
func TestHeaderReadsTheEarlierJSON(t *testing.T) {
	b, _ := json.Marshal(webhookHeader())
	got, err := queue.DecodeHeader(string(b))
	if err != nil || !reflect.DeepEqual(got, webhookHeader()) {
		t.Fatalf("JSON header read as %v, err %v", got, err)
	}
}

// Every cut or damaged encoding is an error, not a panic or a wrong header.
func TestDamagedHeaderIsAnError(t *testing.T) {
	enc := queue.EncodeHeader(webhookHeader())
	for i := 1; i < len(enc); i++ {
		if h, err := queue.DecodeHeader(enc[:i]); err == nil {
			t.Fatalf("the first %d of %d bytes decoded as %v", i, len(enc), h)
		}
	}
	if _, err := queue.DecodeHeader(enc + "x"); err == nil {
		t.Fatal("trailing bytes were accepted")
	}
	if _, err := queue.DecodeHeader("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"); err == nil {
		t.Fatal("a huge key count was accepted")
	}
	if _, err := queue.DecodeHeader("{not json"); err == nil {
		t.Fatal("broken JSON was accepted")
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(queue.EncodeHeader(webhookHeader()))
	f.Add(`{"A":["b"]}`)
	f.Fuzz(func(t *testing.T, s string) {
		h, err := queue.DecodeHeader(s)
		if err != nil || s == "" || s[0] != 0x01 {
			return
		}
		if got, err := queue.DecodeHeader(queue.EncodeHeader(h)); err != nil || len(got) != len(h) {
			t.Fatalf("%q decoded as %v, which does not round trip (%v, %v)", s, h, got, err)
		}
	})
}

func BenchmarkHeader(b *testing.B) {
	h := webhookHeader()
	js, _ := json.Marshal(h)
	enc := queue.EncodeHeader(h)
	b.Run("json-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(h)
		}
	})
	b.Run("binary-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = queue.EncodeHeader(h)
		}
	})
	b.Run("json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got http.Header
			_ = json.Unmarshal(js, &got)
		}
	})
	b.Run("binary-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = queue.DecodeHeader(enc)
		}
	})
}
