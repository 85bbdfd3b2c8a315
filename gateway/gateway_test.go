package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender"
)

// newGateway starts a gateway on an embedded store in a temporary directory.
func newGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	cfg.Stores = NewEmbedded(filepath.Join(t.TempDir(), "store.db"), nil)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Stop()
		_ = cfg.Stores.Close()
	})
	return g
}

// header is a route whose webhooks carry a shared key in X-Key and their id in /id.
func header(name, scope string) RouteSpec {
	return RouteSpec{Name: name, DedupeScope: scope, Receiver: receiver.Options{
		Auth:    []receiver.AuthSpec{{Kind: receiver.AuthHeader, Name: "X-Key", Secret: "s3cret"}},
		EventID: []string{"json:/id"},
	}}
}

func TestRouteNamesAndScopes(t *testing.T) {
	for _, tc := range []struct{ name, scope, preset, want string }{
		{"a", "b", "ploomes", "a"}, {"", "b", "ploomes", "b"}, {"", "", "ploomes", "ploomes"}, {"", "", "", "webhook"},
	} {
		if got := RouteName(tc.name, tc.scope, tc.preset); got != tc.want {
			t.Errorf("RouteName(%q, %q, %q) = %q, want %q", tc.name, tc.scope, tc.preset, got, tc.want)
		}
	}
	if got := RouteScope("a", "", "ploomes"); got != "a" {
		t.Errorf("the scope defaults to the name, got %q", got)
	}
	g := newGateway(t, Config{})
	if _, err := g.AddRoute(header("", "")); err != nil {
		t.Fatal(err)
	}
	// A second route with the default name: taken.
	if _, err := g.AddRoute(header("", "")); err == nil || !strings.Contains(err.Error(), `both named "webhook"`) {
		t.Errorf("a second route named webhook: %v", err)
	}
	// Another name, but the first route's scope by default: refused.
	if _, err := g.AddRoute(header("tenant2", "webhook")); err == nil || !strings.Contains(err.Error(), "share the dedupe scope") {
		t.Errorf("a route falling into another's scope: %v", err)
	}
	// Two routes that both set the same scope share it on purpose.
	if _, err := g.AddRoute(header("x1", "shared")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddRoute(header("x2", "shared")); err != nil {
		t.Errorf("two routes setting one dedupe_scope: %v", err)
	}
	for _, name := range []string{"a/b", "..", "a b", strings.Repeat("x", 65)} {
		if _, err := g.AddRoute(header(name, "")); err == nil {
			t.Errorf("route name %q was accepted", name)
		}
	}
	bad := header("big", "")
	bad.LogRequests = MaxLogRequests + 1
	if _, err := g.AddRoute(bad); err == nil || !strings.Contains(err.Error(), "log_requests") {
		t.Errorf("log_requests over the limit: %v", err)
	}
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want problem+json (status %d, %s)", ct, w.Code, w.Body)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublishProtocol(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer sink.Close()
	g := newGateway(t, Config{
		Endpoints: []*sender.Endpoint{{Name: "crm", URL: sink.URL, Events: []string{"deal.*"}, AllowPrivate: true}},
		Feeds:     []FeedSpec{{Name: "contatos", Schema: "rubeus_servicos_contato"}},
	})
	guard, err := crosssite.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Publisher{Gateway: g, Guard: guard}
	publish := func(target, typ, key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if typ != "" {
			r.Header.Set("Webhook-Event-Type", typ)
		}
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		target, typ, body string
		status            int
		reason            problem.Reason
	}{
		{"/publish", "", `{}`, 400, problem.ReasonMissingType},
		{"/publish", "feed.nosuch", `{}`, 422, problem.ReasonUnknownFeed},
		{"/publish", "FEED.contatos", `{}`, 422, problem.ReasonUnknownFeed},
		{"/publish", "deal.won", `{"a":`, 400, problem.ReasonInvalidJSON},
	} {
		w := publish(tc.target, tc.typ, "", tc.body)
		if p := decodeProblem(t, w); w.Code != tc.status || p.Type != problem.TypeBase+string(tc.reason) {
			t.Errorf("type %q: %d %s, want %d %s", tc.typ, w.Code, p.Type, tc.status, tc.reason)
		}
	}
	// The type from the query; one endpoint matches.
	w := publish("/publish?type=deal.won", "", "k1", `{"id":1}`)
	var ans struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); w.Code != 202 || err != nil || ans.Endpoints != 1 || ans.ID == "" {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	// The same key again: the same id, replayed; with another body: 422.
	if w2 := publish("/publish?type=deal.won", "", "k1", `{"id":1}`); w2.Code != 202 || w2.Header().Get("Idempotent-Replayed") != "true" ||
		!strings.Contains(w2.Body.String(), ans.ID) {
		t.Errorf("repeated publish: %d %s", w2.Code, w2.Body)
	}
	if w3 := publish("/publish?type=deal.won", "", "k1", `{"id":2}`); w3.Code != 422 || decodeProblem(t, w3).Type != problem.TypeBase+string(problem.ReasonConflict) {
		t.Errorf("a key reused with another body: %d %s", w3.Code, w3.Body)
	}
	// A feed's records are checked by its schema: a record without its required fields is named.
	if w4 := publish("/publish", "feed.contatos", "", `[{"nope":1}]`); w4.Code != 422 {
		t.Errorf("a bad feed record: %d %s", w4.Code, w4.Body)
	}
	// A browser's publish from another site is refused before anything is read.
	r := httptest.NewRequest(http.MethodPost, "http://gw.example/publish?type=deal.won", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w5 := httptest.NewRecorder()
	p.ServeHTTP(w5, r)
	if w5.Code != 403 {
		t.Errorf("cross-site publish: %d %s", w5.Code, w5.Body)
	}
}

// handedOn counts the requests a route hands on and keeps the last one's headers.
type handedOn struct {
	n    int
	last http.Header
}

func (h *handedOn) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	h.n++
	h.last = r.Header.Clone()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
	return nil
}

func TestReplay(t *testing.T) {
	var rt *Route
	next := &handedOn{}
	// The "server" a replay goes through: here, straight to the route.
	server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = rt.Serve(w, r, next, nil, nil) })
	g := newGateway(t, Config{FindServer: func(string, bool) http.Handler { return server }})
	var err error
	if rt, err = g.AddRoute(header("crm", "")); err != nil {
		t.Fatal(err)
	}
	send := func(key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "http://gw.example/hooks/crm?x=1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Key", key)
		r.Header.Set("X-Trace", "t1")
		w := httptest.NewRecorder()
		if err := rt.Serve(w, r, next, nil, nil); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := send("s3cret", `{"id":"e1"}`); w.Code != 200 || next.n != 1 {
		t.Fatalf("first webhook: %d %s (handed on %d)", w.Code, w.Body, next.n)
	}
	if w := send("wrong", `{"id":"e2"}`); w.Code != 401 {
		t.Fatalf("a bad key: %d", w.Code)
	}
	recs, err := g.stores.Log.List(context.Background(), "crm", reqlog.Filter{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("log: %d records, %v", len(recs), err)
	}
	accepted, refused := recs[1], recs[0] // newest first
	if accepted.Outcome != string(problem.ReasonAccepted) || refused.Outcome != string(problem.ReasonUnauthorized) {
		t.Fatalf("outcomes %q, %q", accepted.Outcome, refused.Outcome)
	}
	ctx := context.Background()
	// Not forced: dedupe applies, the backend is not called again.
	ans, err := g.Replay(ctx, "crm", accepted.ID, false, false)
	if err != nil || ans.Outcome != string(problem.ReasonDuplicate) || next.n != 1 || ans.ReplayOf != accepted.ID || ans.ID == "" {
		t.Fatalf("replay: %+v %v (handed on %d)", ans, err, next.n)
	}
	// Forced: handed on again, without the (redacted) credential, marked as a replay.
	ans, err = g.Replay(ctx, "crm", accepted.ID, true, false)
	if err != nil || ans.Outcome != string(problem.ReasonAccepted) || next.n != 2 || ans.Status != 200 || ans.Answer != "ok" || !ans.Forced {
		t.Fatalf("forced replay: %+v %v (handed on %d)", ans, err, next.n)
	}
	if next.last.Get("X-Key") != "" || next.last.Get("X-Hookgate-Replay-Of") != accepted.ID || next.last.Get("X-Trace") != "t1" {
		t.Errorf("replayed headers: %v", next.last)
	}
	// The replay is logged as one, pointing at the original.
	rec, err := g.stores.Log.Get(ctx, "crm", ans.ID)
	if err != nil || !rec.Replay || rec.ReplayOf != accepted.ID || !rec.Forced {
		t.Errorf("the replay's record: %+v %v", rec, err)
	}
	// The config changed since: the URI now reaches another route (which would skip its own
	// authentication for a replay), or none. Nothing is handed on.
	other, err := g.AddRoute(header("other", ""))
	if err != nil {
		t.Fatal(err)
	}
	otherNext := &handedOn{}
	for name, srv := range map[string]http.Handler{
		"another route": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = other.Serve(w, r, otherNext, nil, nil) }),
		"no route":      http.NotFoundHandler(),
	} {
		g.cfg.FindServer = func(string, bool) http.Handler { return srv }
		_, err := g.Replay(ctx, "crm", accepted.ID, true, false)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 409 || otherNext.n != 0 || next.n != 2 {
			t.Errorf("replay reaching %s: %v (other route handed on %d, crm %d)", name, err, otherNext.n, next.n)
		}
	}
	g.cfg.FindServer = func(string, bool) http.Handler { return server }
	// A refused request cannot be replayed; an unknown one is not found; nor is an unknown route.
	for _, tc := range []struct {
		route, id string
		status    int
	}{{"crm", refused.ID, 409}, {"crm", "req_nosuch", 404}, {"nosuch", accepted.ID, 404}} {
		_, err := g.Replay(ctx, tc.route, tc.id, true, false)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status {
			t.Errorf("replay %s/%s: %v, want %d", tc.route, tc.id, err, tc.status)
		}
	}
}

func TestAdminAnswersProblems(t *testing.T) {
	g := newGateway(t, Config{}) // the active gateway
	if _, err := g.AddRoute(header("crm", "")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		reason       problem.Reason
	}{
		{"GET", "/webhooks/nosuch", 404, problem.ReasonNotFound},
		{"POST", "/webhooks/deliveries", 405, problem.ReasonMethod},
		{"GET", "/webhooks/deliveries?limit=0", 400, problem.ReasonInvalidQuery},
		{"GET", "/webhooks/inbound/nosuch/requests", 404, problem.ReasonNotFound},
		{"POST", "/webhooks/deliveries/nosuch/retry", 404, problem.ReasonNotFound},
		{"GET", "/webhooks/inbound/crm/requests?outcome=bogus", 400, problem.ReasonInvalidQuery},
		{"POST", "/webhooks/inbound/crm/requests/req_x/replay?force=true&force=false", 400, problem.ReasonInvalidQuery},
	} {
		w := httptest.NewRecorder()
		Admin{}.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if p := decodeProblem(t, w); w.Code != tc.status || p.Type != problem.TypeBase+string(tc.reason) || p.Detail == "" {
			t.Errorf("%s %s: %d %+v, want %d %s", tc.method, tc.path, w.Code, p, tc.status, tc.reason)
		}
	}
}
