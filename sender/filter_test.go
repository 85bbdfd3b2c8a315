package sender

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/signature"
)

func TestCompileFilterRefuses(t *testing.T) {
	for src, want := range map[string]string{
		`data.New.StatusId ==`:         "does not compile",
		`data.x`:                       "must be a boolean expression",
		`type + "x"`:                   "must be a boolean expression, but it is of type string",
		`nosuchvar == 1`:               "undeclared reference",
		`strings.Repeat("x", 2) == ""`: "does not compile",
		strings.Repeat("a", 5000):      "longer than",
	} {
		if _, err := CompileFilter(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileFilter(%.40q) = %v; want %q", src, err, want)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	body := []byte(`{"New":{"StatusId":2,"Amount":10.5,"Id":12345678901234567,"Tags":["vip"]}}`)
	hdr := http.Header{"X-Tenant": {"acme"}}
	for src, want := range map[string]bool{
		`data.New.StatusId == 2 && type == "deal.won"`: true,
		`data.New.StatusId == 3`:                       false,
		`data.New.Amount > 10`:                         true,
		`data.New.Id == 12345678901234567`:             true,
		`data.New.Id == 12345678901234568`:             false,
		`"vip" in data.New.Tags`:                       true,
		`headers["x-tenant"] == "acme"`:                true,
		`data.Missing.Field == 1`:                      false, // an evaluation error is no match
		`has(data.New.StatusId)`:                       true,
	} {
		f, err := CompileFilter(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, _ := f.Match(&FilterInput{Type: "deal.won", Body: body, Header: hdr})
		if got != want {
			t.Errorf("%s = %v, want %v", src, got, want)
		}
	}
	// The cost limit stops a filter that would take long.
	f, err := CompileFilter(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Match(&FilterInput{Type: "t", Body: []byte(`{}`)}); ok || err == nil || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("an expensive filter: %v, %v", ok, err)
	}
}

// Publish applies each endpoint's filter to the published event.
func TestPublishAppliesFilters(t *testing.T) {
	s := newSender(t,
		&Endpoint{Name: "won", URL: "http://127.0.0.1:9/", Events: []string{"deal.*"}, Filter: `data.New.StatusId == 2`},
		&Endpoint{Name: "tenant", URL: "http://127.0.0.1:9/", Filter: `headers["x-tenant"] == "acme"`},
		&Endpoint{Name: "all", URL: "http://127.0.0.1:9/", Events: []string{"deal.won"}})
	res, err := s.Publish(context.Background(), Message{Type: "deal.won", Body: []byte(`{"New":{"StatusId":1}}`)})
	if err != nil || res.Endpoints != 1 {
		t.Fatalf("StatusId 1: %+v, %v; want only the unfiltered endpoint", res, err)
	}
	res, _ = s.Publish(context.Background(), Message{Type: "deal.won", Body: []byte(`{"New":{"StatusId":2}}`), Header: http.Header{"X-Tenant": {"acme"}}})
	if res.Endpoints != 3 {
		t.Fatalf("StatusId 2 from acme: %d endpoints, want 3", res.Endpoints)
	}
	if _, err := (&Endpoint{Name: "x", URL: "http://a/", Filter: "data.x"}).prepared(); err == nil || !strings.Contains(err.Error(), "boolean") {
		t.Fatalf("a non-boolean filter on an endpoint: %v", err)
	}
}

func (e *Endpoint) prepared() (*Endpoint, error) { return e, e.Prepare() }

// The index finds exactly what a scan of every pattern finds.
func TestRegistryIndexMatchesAScan(t *testing.T) {
	reg := NewRegistry()
	words := []string{"deal", "contact", "order", "won", "lost", "created", "a", "b"}
	pick := func(r *rand.Rand) string { return words[r.IntN(len(words))] }
	r := rand.New(rand.NewPCG(1, 2))
	var eps []*Endpoint
	for i := range 400 {
		var evs []string
		for range r.IntN(3) {
			switch r.IntN(5) {
			case 0:
				evs = append(evs, pick(r)+".*")
			case 1:
				evs = append(evs, "*."+pick(r))
			case 2:
				evs = append(evs, pick(r)+".?o*")
			case 3:
				evs = append(evs, pick(r)+"."+pick(r))
			default:
				evs = append(evs, "*")
			}
		}
		e := &Endpoint{Name: fmt.Sprintf("e%d", i), URL: "http://x/", Events: evs}
		if err := reg.Add(e); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	for i := 0; i < 100; i += 3 {
		reg.Remove(fmt.Sprintf("e%d", i))
	}
	for range 500 {
		typ := pick(r) + "." + pick(r)
		var want []string
		for i, e := range eps {
			if i%3 == 0 && i < 100 {
				continue
			}
			if e.Matches(typ) {
				want = append(want, e.Name)
			}
		}
		if got := reg.Match(typ); !slices.Equal(got, want) {
			t.Fatalf("Match(%q) = %v\nscan = %v", typ, got, want)
		}
	}
}

// A rotated secret keeps signing until its grace ends; then only the new one signs.
func TestRetiredSecretSignsUntilItsGraceEnds(t *testing.T) {
	oldS, newS := "whsec_"+strings.Repeat("A", 32), "whsec_"+strings.Repeat("B", 32)
	until := time.Now().Add(time.Hour)
	r, err := newRotatingSigner([]string{newS}, []RetiredSecret{{Secret: oldS, Until: until}})
	if err != nil {
		t.Fatal(err)
	}
	count := func(at time.Time) int {
		h, err := r.Sign(signature.Message{ID: "m", Time: at, Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Fields(h.Get("Webhook-Signature")))
	}
	if n := count(time.Now()); n != 2 {
		t.Fatalf("during the grace: %d signatures, want 2", n)
	}
	if n := count(until.Add(time.Second)); n != 1 {
		t.Fatalf("after the grace: %d signatures, want 1", n)
	}
}

// BenchmarkMatch: one publish's matching with 1 and with 10,000 endpoints, 10 of which
// match.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			reg := NewRegistry()
			for i := range n {
				evs := []string{fmt.Sprintf("type%d.created", i)}
				if i%3 == 0 {
					evs = []string{fmt.Sprintf("type%d.*", i)}
				}
				if i < 10 {
					evs = []string{"deal.won"}
				}
				_ = reg.Add(&Endpoint{Name: fmt.Sprintf("e%d", i), URL: "http://x/", Events: evs})
			}
			b.ReportAllocs()
			for b.Loop() {
				if m := reg.MatchEndpoints("deal.won"); len(m) != min(n, 10) {
					b.Fatal(len(m))
				}
			}
		})
	}
}
