package subscription_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
)

type env struct {
	srv *httptest.Server
	snd *sender.Sender
	m   *subscription.Manager
	st  subscription.Store
	h   *boltdb.Handle
}

func newEnv(t *testing.T, allowPrivate bool) *env {
	t.Helper()
	h := boltdb.New(filepath.Join(t.TempDir(), "store.db"))
	q := boltqueue.New(h, boltqueue.Options{})
	st := boltsubs.New(h)
	t.Cleanup(func() { _ = h.Close() })
	snd := sender.New(q, sender.Options{StopGrace: time.Second})
	m := subscription.NewManager(st, snd, subscription.Options{AllowPrivate: allowPrivate})
	m.Start()
	snd.Start()
	t.Cleanup(func() { m.Stop(); snd.Stop() })
	srv := httptest.NewServer(&subscription.API{Manager: m, Sender: snd, Prefix: "/webhooks/subscriptions"})
	t.Cleanup(srv.Close)
	return &env{srv: srv, snd: snd, m: m, st: st, h: h}
}

func (e *env) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/webhooks/subscriptions"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s: %d with %s", method, path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res.StatusCode, out
}

func TestBadInputIsRefusedNamingTheField(t *testing.T) {
	e := newEnv(t, false)
	for _, c := range []struct {
		body    string
		status  int
		pointer string
		detail  string
	}{
		{`{"url":"::not a url"}`, 422, "/url", "not an absolute URL"},
		{`{"url":"ftp://example.com/x"}`, 422, "/url", "scheme must be http or https"},
		{`{"url":"https://user:pw@example.com/x"}`, 422, "/url", "credentials"},
		{`{"url":"https://example.com/x","events":["deal.[won"]}`, 422, "/events/0", "not a valid glob"},
		{`{"url":"https://example.com/x","filter":"data.x =="}`, 422, "/filter", "does not compile"},
		{`{"url":"https://example.com/x","filter":"data.x"}`, 422, "/filter", "boolean"},
		{`{"url":"https://example.com/x","colour":"red"}`, 400, "/colour", "unknown field"},
		{`{"url":"https://example.com/x","events":"deal.*"}`, 400, "/events", "want []string"},
		{`{"url":"https://example.com/x",`, 400, "", "not a valid subscription"},
		{`{"url":"https://example.com/x","description":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "", "larger than 64 KB"},
		{`{"url":"http://127.0.0.1:8080/x"}`, 422, "/url", "loopback"},
		{`{"url":"http://[::ffff:10.0.0.1]/x"}`, 422, "/url", "private"},
		{`{"url":"http://169.254.169.254/latest"}`, 422, "/url", "cloud metadata"},
		{`{"url":"https://example.com/x","rate_limit":"fast"}`, 422, "/rate_limit", "<n>/<unit>"},
		{`{"url":"https://example.com/x","retry":["5s","soon"]}`, 422, "/retry/1", "duration"},
		{`{"url":"https://example.com/x","breaker":{"cooldown":"10m","max_cooldown":"1m"}}`, 422, "/breaker", "longer than max_cooldown"},
		{`{"url":"https://example.com/x","breaker":{"ratio":1.5}}`, 422, "/breaker", "between 0 and 1"},
		{`{"url":"https://example.com/x","headers":{"Webhook-Signature":"x"}}`, 422, "/headers/Webhook-Signature", "set by Hookgate"},
		{`{"url":"https://example.com/x","secret":"hunter2"}`, 422, "/secret", "whsec_"},
		{`{}`, 422, "/url", "required"},
	} {
		code, p := e.do(t, "POST", "", c.body)
		detail, _ := p["detail"].(string)
		if code != c.status || !strings.Contains(detail, c.detail) {
			t.Errorf("%.60s: %d %q; want %d containing %q", c.body, code, detail, c.status, c.detail)
			continue
		}
		if c.pointer != "" {
			errs, _ := p["errors"].([]any)
			if len(errs) == 0 || errs[0].(map[string]any)["pointer"] != c.pointer {
				t.Errorf("%.60s: errors %v; want the pointer %s", c.body, p["errors"], c.pointer)
			}
		}
	}
	if n := e.m.Count(); n != 0 {
		t.Fatalf("refused inputs stored %d subscriptions", n)
	}
}

func TestCreateReadListChangeRotateDelete(t *testing.T) {
	var hits atomic.Int64
	var last atomic.Value
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.Store(r.Header.Clone())
		hits.Add(1)
		w.WriteHeader(500) // stays pending
	}))
	defer sink.Close()
	e := newEnv(t, true)
	code, s := e.do(t, "POST", "", `{"url":"`+sink.URL+`/hook?token=abc","events":["deal.*"],"description":"CRM","headers":{"X-Tenant":"acme"},"retry":["1h"],"metadata":{"team":"crm"}}`)
	id, _ := s["id"].(string)
	secret, _ := s["secret"].(string)
	if code != 201 || !subscription.IsID(id) || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create: %d %v", code, s)
	}
	if u := s["url"].(string); strings.Contains(u, "abc") {
		t.Fatalf("the URL's token is shown: %s", u)
	}
	code, g := e.do(t, "GET", "/"+id, "")
	if code != 200 || g["secret"] != nil || g["headers"].(map[string]any)["X-Tenant"] != "REDACTED" || g["description"] != "CRM" {
		t.Fatalf("get: %d %v", code, g)
	}
	for range 3 {
		e.do(t, "POST", "", `{"url":"https://example.com/x","events":["contact.created"]}`)
	}
	_, l := e.do(t, "GET", "?limit=2", "")
	if len(l["subscriptions"].([]any)) != 2 || l["next"] == nil {
		t.Fatalf("page 1: %v", l)
	}
	_, l2 := e.do(t, "GET", "?limit=2&after="+l["next"].(string), "")
	if len(l2["subscriptions"].([]any)) != 2 || l2["next"] != nil {
		t.Fatalf("page 2: %v", l2)
	}
	_, f := e.do(t, "GET", "?event=deal.won", "")
	if subs := f["subscriptions"].([]any); len(subs) != 1 || subs[0].(map[string]any)["id"] != id {
		t.Fatalf("filter by event: %v", f)
	}
	// A change applies at once.
	if code, _ := e.do(t, "PATCH", "/"+id, `{"filter":"data.New.StatusId == 2"}`); code != 200 {
		t.Fatalf("patch: %d", code)
	}
	ctx := context.Background()
	if r, _ := e.snd.Publish(ctx, sender.Message{Type: "deal.won", Body: []byte(`{"New":{"StatusId":1}}`)}); r.Endpoints != 0 {
		t.Fatalf("the filter is not applied: %d endpoints", r.Endpoints)
	}
	if r, _ := e.snd.Publish(ctx, sender.Message{Type: "deal.won", Body: []byte(`{"New":{"StatusId":2}}`)}); r.Endpoints != 1 {
		t.Fatalf("a matching event: %d endpoints", r.Endpoints)
	}
	testwait.Until(t, 30*time.Second, func() bool { return hits.Load() >= 1 }, "a delivery to the subscription")
	if h := last.Load().(http.Header); h.Get("X-Tenant") != "acme" || len(strings.Fields(h.Get("Webhook-Signature"))) != 1 {
		t.Fatalf("delivery headers: %v", h)
	}
	// Rotation: a new secret, and both sign during the grace.
	code, rot := e.do(t, "POST", "/"+id+"/rotate-secret", `{"grace":"1h"}`)
	if code != 200 || rot["secret"] == secret || rot["previous_secret_until"] == nil {
		t.Fatalf("rotate: %d %v", code, rot)
	}
	if code, _ := e.do(t, "POST", "/"+id+"/test", ""); code != 200 {
		t.Fatalf("test: %d", code)
	}
	if h := last.Load().(http.Header); len(strings.Fields(h.Get("Webhook-Signature"))) != 2 {
		t.Fatalf("during the grace: %q", h.Get("Webhook-Signature"))
	}
	// Delete: its pending delivery is dead-lettered, not lost.
	code, d := e.do(t, "DELETE", "/"+id, "")
	if code != 200 || d["dead_lettered"] != float64(1) {
		t.Fatalf("delete: %d %v", code, d)
	}
	dead, _ := e.snd.Queue().List(ctx, queue.Filter{Endpoints: []string{id}, State: queue.Dead})
	if len(dead) != 1 || dead[0].Attempts[len(dead[0].Attempts)-1].Error != "subscription deleted" {
		t.Fatalf("dead letters after delete: %+v", dead)
	}
	if code, _ := e.do(t, "GET", "/"+id, ""); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
	if _, ok := e.snd.Registry().Get(id); ok {
		t.Fatal("still in the registry")
	}
	if code, _ := e.do(t, "PUT", "/"+id, "{}"); code != 405 {
		t.Fatalf("PUT: %d", code)
	}
}

// Two managers on one store (the old and the new config of a reload, or two instances):
// what one writes the other applies.
func TestManagersFollowEachOther(t *testing.T) {
	e := newEnv(t, false)
	snd2 := sender.New(boltqueue.New(boltdb.New(filepath.Join(t.TempDir(), "q2.db")), boltqueue.Options{}), sender.Options{})
	m2 := subscription.NewManager(e.st, snd2, subscription.Options{})
	m2.Start()
	defer m2.Stop()
	s, err := e.m.Create(context.Background(), subscription.Input{URL: ptr("https://example.com/a")})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() bool { _, ok := snd2.Registry().Get(s.ID); return ok }, "the other instance to load the subscription")
	if _, err := e.m.Delete(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() bool { _, ok := snd2.Registry().Get(s.ID); return !ok }, "the other instance to drop the subscription")
	// A third one starting later loads what exists.
	_, _ = e.m.Create(context.Background(), subscription.Input{URL: ptr("https://example.com/b")})
	m3 := subscription.NewManager(e.st, snd2, subscription.Options{})
	m3.Start()
	defer m3.Stop()
	if m3.Count() != 1 {
		t.Fatalf("loaded %d", m3.Count())
	}
}

func ptr[T any](v T) *T { return &v }
