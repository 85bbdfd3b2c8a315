package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"

	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"go.uber.org/zap"
)

// replayCtx travels with a replayed request so its route logs it as a replay and tells
// the replay which record it made.
type replayCtx struct {
	of      string
	route   string // the route that logged the request: the only one that may handle it
	force   bool
	reached string // the route the rebuilt request reached, if any
	id      string
	outcome string
	problem *problem.Problem // the refusal answered, if any
}

type replayCtxKey struct{}

// ReplayAnswer is what a replay did.
type ReplayAnswer struct {
	// ReplayOf is the id of the request replayed.
	ReplayOf string `json:"replay_of"`
	// ID is the id of the replay's own record in the request log.
	ID string `json:"id"`
	// Forced is true when dedupe and the stale-event guard were skipped.
	Forced bool `json:"forced"`
	// Outcome is how the replay ended (a problem.Reason).
	Outcome string `json:"outcome"`
	// Status is the answer's HTTP status.
	Status int `json:"status"`
	// Answer is the answer's body (its first 4 KB).
	Answer string `json:"answer,omitempty"`
	// Order is, on a route with a stale-event guard, how the request's order value
	// compared with its record's newest before the replay.
	Order *ReplayOrder `json:"order,omitempty"`
	// Warning says that a forced replay handed on an event older than its record's newest.
	Warning string `json:"warning,omitempty"`
}

// ReplayOrder is a replayed request's order value against its record's newest.
type ReplayOrder struct {
	Key    string `json:"record_key"`
	Value  string `json:"value"`
	Newest string `json:"newest,omitempty"`
	// Older is true when Newest is newer than Value: handing the request on moves the
	// backend's state backwards.
	Older bool `json:"older"`
}

// ReplayRefused is the 409 of a forced replay of an event older than its record's newest,
// asked without older: nothing was sent.
type ReplayRefused struct {
	// ReplayOf is the id of the request that was not replayed.
	ReplayOf string
	// Order is its order value against its record's newest.
	Order *ReplayOrder
}

func (e *ReplayRefused) Error() string {
	return "request " + e.ReplayOf + " is older than its record's newest value (" + e.Order.Value + " < " + e.Order.Newest +
		"): a forced replay would move the backend's state backwards; nothing was sent. Add older=true to send it anyway"
}

// Replay sends a logged request through its route again, in this process: through the
// HTTP server that serves the route, so every handler before and after it (rewrites,
// headers, reverse_proxy) runs as for the original. Authentication is skipped (its
// credentials were not kept); dedupe and the stale-event guard apply unless force.
//
// A forced replay of an event older than its record's newest (which would move the
// backend's state backwards) is refused with a *ReplayRefused, unless older is set; then
// it is sent and its answer carries a warning. Other refusals are *APIError.
func (g *Gateway) Replay(ctx context.Context, route, id string, force, older bool) (ReplayAnswer, error) {
	rt, err := g.loggedRoute(route)
	if err != nil {
		return ReplayAnswer{}, err
	}
	rec, err := rt.log.Get(ctx, route, id)
	if errors.Is(err, reqlog.ErrNotFound) {
		return ReplayAnswer{}, apiErr(http.StatusNotFound, problem.ReasonNotFound, "no request %q in the log of route %q", id, route)
	}
	if err != nil {
		return ReplayAnswer{}, storeErr(err)
	}
	if !rec.Replayable {
		return ReplayAnswer{}, apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s cannot be replayed: only requests that passed authentication and validation, with their whole body kept (log_body), can be", id)
	}
	var ord *ReplayOrder
	if rec.OrderKey != "" {
		value, st, isOlder, err := rt.rc.OrderCompare(ctx, rec.OrderKey, rec.OrderValue)
		switch {
		case err == nil:
			ord = &ReplayOrder{Key: rec.OrderKey, Value: value, Newest: st.Newest, Older: isOlder}
		case force && !older && !errors.Is(err, receiver.ErrNoOrderGuard):
			return ReplayAnswer{}, apiErr(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "cannot tell whether request %s is older than its record's newest value (%v); retry, or add older=true to send it anyway", id, err)
		}
	}
	if force && !older && ord != nil && ord.Older {
		return ReplayAnswer{}, &ReplayRefused{ReplayOf: id, Order: ord}
	}
	srv, _ := rt.server.Load().(http.Handler)
	if srv == nil && g.cfg.FindServer != nil {
		srv = g.cfg.FindServer(rec.Host, rec.TLS) // received by another instance (Redis), or before a reload
	}
	if srv == nil {
		return ReplayAnswer{}, apiErr(http.StatusConflict, problem.ReasonStateConflict, "this instance cannot tell which of its servers serves route %q (none listens on the port of %s); replay from the instance that received it", route, rec.Host)
	}
	req, rp, err := rebuild(ctx, rec, route, receiver.Replay{Force: force})
	if err != nil {
		return ReplayAnswer{}, apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s cannot be rebuilt: %v", id, err)
	}
	w := &recorder{header: http.Header{}}
	srv.ServeHTTP(w, req)
	switch {
	case rp.reached == "":
		return ReplayAnswer{}, apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s was not replayed: its URI %s reaches no webhook_receive route now (the config changed since it was logged); nothing was handed on", id, rec.URI)
	case rp.reached != route:
		return ReplayAnswer{}, apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s was not replayed: its URI %s now reaches route %q, not %q that logged it (the config changed since); nothing was handed on", id, rec.URI, rp.reached, route)
	}
	ans := ReplayAnswer{ReplayOf: id, ID: rp.id, Forced: force, Outcome: rp.outcome, Status: w.statusOr200(), Answer: w.body.String(), Order: ord}
	if force && ord != nil && ord.Older {
		ans.Warning = "the replayed event is older than its record's newest value (" + ord.Value + " < " + ord.Newest + "): the backend was given an older state"
		rt.logger.Warn("forced replay of an event older than its record's newest", zap.String("route", route), zap.String("replay_of", id),
			zap.String("record_key", ord.Key), zap.String("value", ord.Value), zap.String("newest", ord.Newest))
	}
	return ans, nil
}

// rebuild makes the request a replay (or a quarantine's release) sends from its record:
// the method, URI, headers (a redacted credential is no credential: dropped) and body,
// marked as a replay.
func rebuild(ctx context.Context, rec reqlog.Record, route string, how receiver.Replay) (*http.Request, *replayCtx, error) {
	rp := &replayCtx{of: rec.ID, route: route, force: how.Force}
	rctx := receiver.WithReplay(context.WithValue(ctx, replayCtxKey{}, rp), how)
	scheme := "http"
	if rec.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, scheme+"://"+rec.Host+rec.URI, bytes.NewReader(rec.BodyBytes()))
	if err != nil {
		return nil, nil, err
	}
	req.Header = rec.Header.Clone()
	for k, vs := range req.Header {
		if len(vs) == 1 && vs[0] == credential.Redacted {
			delete(req.Header, k)
		}
	}
	req.Header.Set("X-Hookgate-Replay-Of", rec.ID)
	req.RemoteAddr = "127.0.0.1:0"
	req.RequestURI = rec.URI
	if rec.TLS {
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: hostOnly(rec.Host)}
	}
	return req, rp, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// recorder is the ResponseWriter of a replay: the answer is kept (its first 4 KB).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := 4096 - w.body.Len(); room > 0 {
		w.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
func (w *recorder) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
