package caddymodule

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"go.uber.org/zap"
)

// replayCtx travels with a replayed request so its handler logs it as a replay and tells
// the admin API which record it made.
type replayCtx struct {
	of      string
	force   bool
	id      string
	outcome string
}

type replayCtxKey struct{}

// setupRequestLog prepares the route's request log (Provision).
func (h *Receive) setupRequestLog(auth []receiver.AuthSpec) {
	if h.LogRequests < 0 {
		return
	}
	limit := h.LogRequests
	if limit == 0 {
		limit = reqlog.DefaultLimit
	}
	h.reqlog = h.app.store.reqlog
	h.reqlog.SetLimit(h.route, limit)
	var query []string
	for _, a := range auth {
		if a.Kind == receiver.AuthQuery {
			query = append(query, a.Name)
		}
	}
	h.redactor = reqlog.NewRedactor(receiver.CredentialHeaders(auth), query)
}

// keepBody is how many body bytes the core copies for the log.
func (h *Receive) keepBody() int {
	switch {
	case h.LogRequests < 0 || h.LogBody < 0:
		return 0
	case h.LogBody == 0:
		return reqlog.DefaultBody
	}
	return int(h.LogBody)
}

// record adds one request to the route's log.
func (h *Receive) record(r *http.Request, res receiver.Result, start time.Time, total time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	e := &reqlog.Entry{
		Record: reqlog.Record{ID: reqlog.NewID(start), Route: h.route, Time: start, Remote: r.RemoteAddr, Method: r.Method,
			Host: r.Host, TLS: r.TLS != nil, Outcome: string(res.Reason), Status: res.Status, EventID: res.EventID,
			OrderKey: res.OrderKey, OrderValue: res.OrderValue,
			Stages: reqlog.Stages{Auth: ms(res.Stages.Auth), Parse: ms(res.Stages.Parse), Validate: ms(res.Stages.Validate),
				Store: ms(res.Stages.Store), Total: ms(total)},
			BodySize: res.BodySize, BodyCut: res.BodySize > len(res.Body)},
		RawHeader: r.Header, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Redact: h.redactor, RawBody: res.Body,
	}
	if p := res.Problem; p != nil {
		e.Detail, e.Errors = p.Detail, p.Errors
	}
	e.Replayable = res.Passed && !e.BodyCut && res.Body != nil
	if rp, ok := r.Context().Value(replayCtxKey{}).(*replayCtx); ok {
		e.Replay, e.ReplayOf, e.Forced = true, rp.of, rp.force
		rp.id, rp.outcome = e.ID, e.Outcome
	}
	h.reqlog.Add(e)
}

// replayAnswer is what a replay did.
type replayAnswer struct {
	ReplayOf string `json:"replay_of"`
	ID       string `json:"id"`
	Forced   bool   `json:"forced"`
	Outcome  string `json:"outcome"`
	Status   int    `json:"status"`
	Answer   string `json:"answer,omitempty"`
	// Order is, on a route with a stale-event guard, how the request's order value
	// compared with its record's newest before the replay.
	Order *replayOrder `json:"order,omitempty"`
	// Warning says that a forced replay handed on an event older than its record's newest.
	Warning string `json:"warning,omitempty"`
}

// replayOrder is a replayed request's order value against its record's newest.
type replayOrder struct {
	Key    string `json:"record_key"`
	Value  string `json:"value"`
	Newest string `json:"newest,omitempty"`
	// Older is true when Newest is newer than Value: handing the request on moves the
	// backend's state backwards.
	Older bool `json:"older"`
}

// replayRefusal is the 409 of a forced replay of an event older than its record's newest,
// sent without older=true: nothing was sent.
type replayRefusal struct {
	Message  string       `json:"error"`
	ReplayOf string       `json:"replay_of"`
	Order    *replayOrder `json:"order"`
}

func (e *replayRefusal) Error() string { return e.Message }

// replay sends a logged request through the route again, in this process: through the
// Caddy server that serves the route, so every handler before and after it (rewrites,
// headers, reverse_proxy) runs as for the original. Authentication is skipped (its
// credentials were not kept); dedupe and the stale-event guard apply unless force.
//
// A forced replay of an event older than its record's newest (which would move the
// backend's state backwards) is refused with a *replayRefusal naming the newest value,
// unless older is set; then it is sent and its answer carries a warning.
func (a *App) replay(ctx context.Context, route, id string, force, older bool) (replayAnswer, error) {
	h, ok := a.receivers[route]
	if !ok {
		return replayAnswer{}, apiErr(http.StatusNotFound, "no webhook_receive route %q", route)
	}
	if h.reqlog == nil {
		return replayAnswer{}, apiErr(http.StatusNotFound, "route %q keeps no request log (log_requests 0)", route)
	}
	rec, err := h.reqlog.Get(ctx, route, id)
	if errors.Is(err, reqlog.ErrNotFound) {
		return replayAnswer{}, apiErr(http.StatusNotFound, "no request %q in the log of route %q", id, route)
	}
	if err != nil {
		return replayAnswer{}, storeErr(err)
	}
	if !rec.Replayable {
		return replayAnswer{}, apiErr(http.StatusConflict, "request %s cannot be replayed: only requests that passed authentication and validation, with their whole body kept (log_body), can be", id)
	}
	var ord *replayOrder
	if rec.OrderKey != "" {
		value, st, isOlder, err := h.rc.OrderCompare(ctx, rec.OrderKey, rec.OrderValue)
		switch {
		case err == nil:
			ord = &replayOrder{Key: rec.OrderKey, Value: value, Newest: st.Newest, Older: isOlder}
		case force && !older && !errors.Is(err, receiver.ErrNoOrderGuard):
			return replayAnswer{}, apiErr(http.StatusServiceUnavailable, "cannot tell whether request %s is older than its record's newest value (%v); retry, or add older=true to send it anyway", id, err)
		}
	}
	if force && !older && ord != nil && ord.Older {
		return replayAnswer{}, &replayRefusal{ReplayOf: id, Order: ord,
			Message: "request " + id + " is older than its record's newest value (" + ord.Value + " < " + ord.Newest + "): a forced replay would move the backend's state backwards; nothing was sent. Add older=true to send it anyway"}
	}
	srv := h.server.Load()
	if srv == nil {
		srv = serverByPort(rec.Host, rec.TLS) // received by another instance (Redis), or before a reload
	}
	if srv == nil {
		return replayAnswer{}, apiErr(http.StatusConflict, "this instance cannot tell which of its servers serves route %q (none listens on the port of %s); replay from the instance that received it", route, rec.Host)
	}
	rp := &replayCtx{of: id, force: force}
	rctx := receiver.WithReplay(context.WithValue(ctx, replayCtxKey{}, rp), receiver.Replay{Force: force})
	scheme := "http"
	if rec.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, scheme+"://"+rec.Host+rec.URI, bytes.NewReader(rec.BodyBytes()))
	if err != nil {
		return replayAnswer{}, apiErr(http.StatusConflict, "request %s cannot be rebuilt: %v", id, err)
	}
	req.Header = rec.Header.Clone()
	for k, vs := range req.Header {
		if len(vs) == 1 && vs[0] == credential.Redacted {
			delete(req.Header, k) // a redacted credential is no credential
		}
	}
	req.Header.Set("X-Hookgate-Replay-Of", id)
	req.RemoteAddr = "127.0.0.1:0"
	req.RequestURI = rec.URI
	if rec.TLS {
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: hostOnly(rec.Host)}
	}
	w := &recorder{header: http.Header{}}
	srv.ServeHTTP(w, req)
	ans := replayAnswer{ReplayOf: id, ID: rp.id, Forced: force, Outcome: rp.outcome, Status: w.statusOr200(), Answer: w.body.String(), Order: ord}
	if force && ord != nil && ord.Older {
		ans.Warning = "the replayed event is older than its record's newest value (" + ord.Value + " < " + ord.Newest + "): the backend was given an older state"
		h.logger.Warn("forced replay of an event older than its record's newest", zap.String("route", route), zap.String("replay_of", id),
			zap.String("record_key", ord.Key), zap.String("value", ord.Value), zap.String("newest", ord.Newest))
	}
	return ans, nil
}

// serverByPort finds the running HTTP server that listens on the port of host (the
// request's Host), when exactly one does; else the only server, if there is one.
func serverByPort(host string, isTLS bool) *caddyhttp.Server {
	port := "80"
	if isTLS {
		port = "443"
	}
	if _, p, err := net.SplitHostPort(host); err == nil {
		port = p
	}
	appIface, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil
	}
	app, ok := appIface.(*caddyhttp.App)
	if !ok {
		return nil
	}
	var found, only *caddyhttp.Server
	for _, srv := range app.Servers {
		only = srv
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				continue
			}
			if p := parsePort(port); na.StartPort <= p && p <= na.EndPort {
				if found != nil && found != srv {
					return nil
				}
				found = srv
			}
		}
	}
	if found == nil && len(app.Servers) == 1 {
		return only
	}
	return found
}

func parsePort(p string) uint {
	n, _ := strconv.Atoi(p)
	return uint(n)
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

// Admin routes of the request log: GET /webhooks/inbound/<route>/requests[?outcome=&limit=],
// GET …/requests/<id>, POST …/requests/<id>/replay[?force=true].
func (a *AdminAPI) inboundRequests(w http.ResponseWriter, r *http.Request, app *App, parts []string) error {
	if app == nil {
		return apiErr(http.StatusNotFound, "no webhooks app is running")
	}
	route := parts[1]
	h, ok := app.receivers[route]
	if !ok {
		return apiErr(http.StatusNotFound, "no webhook_receive route %q", route)
	}
	if h.reqlog == nil {
		return apiErr(http.StatusNotFound, "route %q keeps no request log (log_requests 0)", route)
	}
	switch len(parts) {
	case 3:
		if r.Method != http.MethodGet {
			return apiErr(http.StatusMethodNotAllowed, "use GET")
		}
		q := r.URL.Query()
		f := reqlog.Filter{Outcome: q.Get("outcome")}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > 1000 {
				return apiErr(http.StatusBadRequest, "limit %q: a number from 1 to 1000", l)
			}
			f.Limit = n
		}
		recs, err := h.reqlog.List(r.Context(), route, f)
		if err != nil {
			return storeErr(err)
		}
		if recs == nil {
			recs = []reqlog.Record{}
		}
		return writeJSON(w, recs)
	case 4:
		if r.Method != http.MethodGet {
			return apiErr(http.StatusMethodNotAllowed, "use GET")
		}
		rec, err := h.reqlog.Get(r.Context(), route, parts[3])
		if errors.Is(err, reqlog.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no request %q in the log of route %q", parts[3], route)
		}
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, rec)
	case 5:
		if parts[4] != "replay" {
			break
		}
		if r.Method != http.MethodPost {
			return apiErr(http.StatusMethodNotAllowed, "replay with POST")
		}
		var force, older bool
		for _, p := range []struct {
			name string
			v    *bool
		}{{"force", &force}, {"older", &older}} {
			switch f := r.URL.Query().Get(p.name); f {
			case "", "false":
			case "true":
				*p.v = true
			default:
				return apiErr(http.StatusBadRequest, "%s %q: true or false", p.name, f)
			}
		}
		if older && !force {
			return apiErr(http.StatusBadRequest, "older=true confirms a forced replay (force=true) of an event older than its record's newest; without force the stale-event guard applies")
		}
		ans, err := app.replay(r.Context(), route, parts[3], force, older)
		var refusal *replayRefusal
		if errors.As(err, &refusal) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusConflict)
			return json.NewEncoder(w).Encode(refusal)
		}
		if err != nil {
			return err
		}
		return writeJSON(w, ans)
	}
	return apiErr(http.StatusNotFound, "no such route: %s", strings.Join(parts, "/"))
}

// serverOf remembers the Caddy server a request came through (for replays).
func (h *Receive) serverOf(r *http.Request) {
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv != nil && h.server.Load() != srv {
		h.server.Store(srv)
	}
}
