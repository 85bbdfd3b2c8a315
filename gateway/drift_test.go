package gateway

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
)

func TestDriftBufferCountsBoundsAndStartsAgain(t *testing.T) {
	b := newDriftBuffer()
	body := []byte(`{"id":"7","password":"hunter2","items":[{"x":1}]}`)
	d := receiver.Drift{Violations: []problem.Violation{{Pointer: "/items/0/x", Message: "m"}, {Pointer: "/items/1/x", Message: "m"}},
		Unnamed: []string{"/extra"}, Body: body}
	b.observe("r", d)
	b.observe("r", d)
	got := b.take()["r"]
	if len(got) != 2 {
		t.Fatalf("groups = %+v; want /items/*/x once per request and /extra", got)
	}
	for _, g := range got {
		if g.Count != 2 || g.First.IsZero() || g.Last.Before(g.First) {
			t.Fatalf("group %+v: want count 2 with first and last", g)
		}
		if g.Pointer == "/items/*/x" && (g.Example == "" || !strings.Contains(g.Example, "REDACTED") || strings.Contains(g.Example, "hunter2")) {
			t.Fatalf("example %q: want the body with its secret-looking value redacted", g.Example)
		}
	}
	if again := b.take(); len(again) != 0 {
		t.Fatalf("a second take returned %+v; want nothing new", again)
	}
	for i := range 3 * quarantine.MaxGroups {
		b.observe("r", receiver.Drift{Unnamed: []string{"/f" + strconv.Itoa(i)}, Body: body})
	}
	if n := len(b.routes["r"]); n > 2*quarantine.MaxGroups+1 {
		t.Fatalf("%d groups in memory; want at most %d and (other)", n, 2*quarantine.MaxGroups)
	}
}

// The drift report's cost on the request path, for a request whose groups are known.
func BenchmarkDriftObserve(b *testing.B) {
	buf := newDriftBuffer()
	d := receiver.Drift{Unnamed: []string{"/New/Phones", "/New/Tags", "/New/LegalName", "/Old/Phones", "/Old/Tags", "/Old/LegalName"}, Body: []byte(`{}`)}
	buf.observe("ploomes", d)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.observe("ploomes", d)
	}
}
