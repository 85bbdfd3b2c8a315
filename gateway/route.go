package gateway

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/transform"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The sampling of accepted webhooks' log lines (log_accepted sampled): per route, the first
// logFirst lines of each second, then every logThereafter-th.
const (
	logFirst      = 100
	logThereafter = 100
)

// Limits of a route's request log.
const (
	// MaxLogRequests is the most requests a route's log keeps.
	MaxLogRequests = 100_000
	// MaxLogBody is the most body bytes a log record keeps.
	MaxLogBody = 10 << 20
)

// RouteSpec is an inbound route (webhook_receive), its secrets already expanded.
type RouteSpec struct {
	// Name is the route's name as configured, or "" for the default (see RouteName).
	Name string
	// DedupeScope is the dedupe scope as configured, or "" for the default (the name).
	DedupeScope string
	// Receiver configures the inbound core; its DedupeScope, Store, OrderStore, KeepBody
	// and OnStoreError are set by AddRoute.
	Receiver receiver.Options
	// LogRequests is how many requests the route's log keeps: 0 means
	// reqlog.DefaultLimit, negative turns the log off. At most MaxLogRequests.
	LogRequests int
	// LogBody is how many body bytes each log record keeps: 0 means reqlog.DefaultBody,
	// negative keeps none. At most MaxLogBody.
	LogBody int64
	// Async, for mode async, is the internal target accepted webhooks are queued for;
	// nil hands them on to the next handler (sync).
	Async *sender.Endpoint
	// LogAccepted is "sampled" (default) or "all": how the per-webhook line of accepted
	// webhooks is written (every other outcome is always written).
	LogAccepted string
	// Transform is the route's CEL transform (see package transform), "" for none.
	Transform string
	// OnInvalid is what a body the schema refuses gets: OnInvalidReject ("" too) or
	// OnInvalidQuarantine.
	OnInvalid string
	// Quarantine is the quarantine's retention, with on_invalid quarantine (nil: the
	// defaults).
	Quarantine *QuarantineConfig
	// Logger is the route's logger. Default: none.
	Logger *zap.Logger
}

// validRouteName tells whether n can name a route: it is a path segment of the admin API
// and a metrics label.
func validRouteName(n string) bool {
	if n == "" || len(n) > 64 || n == "." || n == ".." {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// RouteName is a route's name: name, else the dedupe scope, else the preset, else "webhook".
func RouteName(name, dedupeScope, preset string) string {
	for _, n := range []string{name, dedupeScope, preset} {
		if n != "" {
			return n
		}
	}
	return "webhook"
}

// RouteScope is a route's dedupe scope: the dedupe scope, else the route's name.
func RouteScope(name, dedupeScope, preset string) string {
	if dedupeScope != "" {
		return dedupeScope
	}
	return RouteName(name, dedupeScope, preset)
}

// Validate checks the spec's own limits, without building anything.
func (s *RouteSpec) Validate() error {
	for what, v := range map[string]string{"name": s.Name, "dedupe_scope": s.DedupeScope} {
		if v != "" && !validRouteName(v) {
			return fmt.Errorf("%s %q: use 1-64 letters, digits, '_', '-' or '.' (it is a path segment of the admin API)", what, v)
		}
	}
	o := s.Receiver
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"claim_timeout", o.ClaimTTL}, {"order_window", o.OrderWindow}, {"order_max_ahead", o.OrderMaxAhead}} {
		if d.v < 0 {
			return fmt.Errorf("%s must be a positive duration", d.name)
		}
	}
	if o.Dedupe < -1 { // -1 is off
		return fmt.Errorf("dedupe must be a positive duration")
	}
	for i, a := range o.Auth {
		if a.Tolerance < 0 {
			return fmt.Errorf("auth line %d (%s): tolerance must be a positive duration", i+1, a.Kind)
		}
	}
	if o.MaxBody < 0 {
		return fmt.Errorf("max_body must be positive")
	}
	if s.LogRequests > MaxLogRequests {
		return fmt.Errorf("log_requests %d: a number from 0 (off) to %d", s.LogRequests, MaxLogRequests)
	}
	if s.LogBody > MaxLogBody {
		return fmt.Errorf("log_body %d: a size up to 10MB (0 keeps none)", s.LogBody)
	}
	switch s.LogAccepted {
	case "", "sampled", "all":
	default:
		return fmt.Errorf("log_accepted %q: sampled or all", s.LogAccepted)
	}
	switch s.OnInvalid {
	case "", OnInvalidReject, OnInvalidQuarantine:
	default:
		return fmt.Errorf("on_invalid %q: reject or quarantine", s.OnInvalid)
	}
	if s.Quarantine != nil && s.OnInvalid != OnInvalidQuarantine {
		return fmt.Errorf("quarantine options need on_invalid quarantine")
	}
	if _, err := s.Quarantine.Limits(); err != nil {
		return err
	}
	return nil
}

// Route is one inbound route of a gateway: the inbound core with its request log,
// counters, metrics and (async) hand-off to the queue.
type Route struct {
	g         *Gateway
	name      string
	rc        *receiver.Receiver
	logger    *zap.Logger
	accepted  *zap.Logger // the per-webhook line of accepted webhooks (sampled unless log_accepted all)
	obs       *routeObserver
	fwd       *sender.Forwarder // async: hands accepted webhooks to the queue
	dedupe    time.Duration     // the dedupe window, 0 when off: a hand-off's queued id may be derived (sender.Inbound.DedupeWindow)
	log       reqlog.Log        // nil when the log is off
	redactor  *reqlog.Redactor
	server    atomic.Value // http.Handler: the server of the latest request, for replays
	transform string       // the route's transform expression, "" for none
	onInvalid string       // OnInvalidReject or OnInvalidQuarantine
	qlimits   quarantine.Limits
	// quarantined logs each quarantined request, sampled like accepted ones.
	quarantined *zap.Logger
}

// AddRoute registers and builds an inbound route, refusing one whose name is taken (names
// label metrics and the admin API) or whose dedupe scope is another route's, unless both
// set that scope explicitly (sharing ids on purpose). Without the check, two tenants'
// routes with the same preset would answer one's events as the other's duplicates.
func (g *Gateway) AddRoute(spec RouteSpec) (*Route, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	name := RouteName(spec.Name, spec.DedupeScope, spec.Receiver.Preset)
	sc := RouteScope(spec.Name, spec.DedupeScope, spec.Receiver.Preset)
	if err := g.register(name, sc, spec.Name != "", spec.DedupeScope != ""); err != nil {
		return nil, err
	}
	logger := spec.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	rt := &Route{g: g, name: name, logger: logger, accepted: logger, onInvalid: OnInvalidReject}
	rt.qlimits, _ = spec.Quarantine.Limits() // checked by Validate
	sampled := logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, logFirst, logThereafter)
	}))
	if spec.LogAccepted != "all" {
		rt.accepted = sampled
	}
	rt.quarantined = sampled
	o := spec.Receiver
	o.DedupeScope = sc
	o.Route = name
	if spec.Transform != "" {
		tr, err := transform.Compile(transform.Inbound, spec.Transform)
		if err != nil {
			return nil, fmt.Errorf("transform: %w", err)
		}
		o.Transform = tr
		rt.transform = spec.Transform
	}
	o.Store = g.stores.Dedupe // used only when dedupe is on and an event id is known
	switch {
	case o.Dedupe == 0:
		rt.dedupe = receiver.DefaultDedupeWindow
	case o.Dedupe > 0:
		rt.dedupe = o.Dedupe
	}
	o.OrderStore = g.stores.Order
	var query []string
	for _, a := range o.Auth {
		if a.Kind == receiver.AuthQuery {
			query = append(query, a.Name)
		}
	}
	rt.redactor = reqlog.NewRedactor(receiver.CredentialHeaders(o.Auth), query)
	o.Drift = func(d receiver.Drift) { g.drift.observe(name, d) }
	if spec.OnInvalid == OnInvalidQuarantine {
		rt.onInvalid = OnInvalidQuarantine
		o.Quarantine = rt.hold
	}
	if spec.LogRequests >= 0 {
		limit := spec.LogRequests
		if limit == 0 {
			limit = reqlog.DefaultLimit
		}
		rt.log = g.stores.Log
		rt.log.SetLimit(name, limit)
		switch {
		case spec.LogBody < 0:
		case spec.LogBody == 0:
			o.KeepBody = reqlog.DefaultBody
		default:
			o.KeepBody = int(spec.LogBody)
		}
	}
	accept := o.AcceptOnStoreError
	o.OnStoreError = func(err error) {
		logger.Warn("webhook store error", zap.Error(err), zap.Bool("accepted_without_dedupe", accept))
	}
	var err error
	if rt.rc, err = receiver.New(o); err != nil {
		return nil, err
	}
	rt.obs = newRouteObserver(name, rt.rc.Source())
	if spec.Async != nil {
		if rt.fwd, err = g.sender.Forwarder(name, rt.rc.Scope(), spec.Async, receiver.CredentialHeaders(o.Auth)); err != nil {
			return nil, err
		}
	}
	g.mu.Lock()
	g.routes[name] = rt
	g.mu.Unlock()
	return rt, nil
}

// register records a route's name and scope (see AddRoute).
func (g *Gateway) register(name, dedupeScope string, namedExplicitly, scopedExplicitly bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, taken := g.routes[name]; taken {
		how := "give each its own `name`"
		if !namedExplicitly {
			how = "give each its own `name` (the default is the dedupe_scope, else the preset name, else \"webhook\")"
		}
		return fmt.Errorf("two webhook_receive routes are both named %q; a name labels one route in metrics, logs and the admin API, and is its dedupe scope: %s, or set the same `dedupe_scope` on routes that should share event ids", name, how)
	}
	if other, ok := g.scopes[dedupeScope]; ok && !(other.explicit && scopedExplicitly) {
		return fmt.Errorf("webhook_receive routes %q and %q would share the dedupe scope %q, so one's events would be answered as duplicates of the other's: give each its own name, or set `dedupe_scope %s` on both to share event ids on purpose", other.route, name, dedupeScope, dedupeScope)
	}
	g.routes[name] = nil // reserved; AddRoute sets it once built
	if _, ok := g.scopes[dedupeScope]; !ok {
		g.scopes[dedupeScope] = scope{route: name, explicit: scopedExplicitly}
	}
	return nil
}

// Name returns the route's name.
func (rt *Route) Name() string { return rt.name }

// Transform returns the route's transform expression, "" for none.
func (rt *Route) Transform() string { return rt.transform }

// Source returns the route's sender (its preset, or "webhook").
func (rt *Route) Source() string { return rt.rc.Source() }

// Next is the handler after a route in sync mode (Caddy's next handler).
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Placeholders receives the values later handlers read (Caddy's replacer): the names are
// http.webhook.source, .event_id, .verified, .duplicate and .outcome.
type Placeholders interface {
	Set(name string, value any)
}

// webhookHeaders are the headers that tell a backend about the webhook: dropped from the
// sender's request on every route.
var webhookHeaders = []string{"X-Webhook-Source", "X-Webhook-Verified", "X-Webhook-Event-Id"}

// Serve handles one webhook: the inbound core decides, an accepted one is handed to next
// (sync) or queued (async); then the outcome is counted, logged and added to the request
// log. ph may be nil; server is the HTTP server the request came through (kept for
// replays), or nil.
func (rt *Route) Serve(w http.ResponseWriter, r *http.Request, next Next, ph Placeholders, server http.Handler) error {
	if r.Header["X-Hookgate-Replay-Of"] != nil { // a replay (or a forged header: no replayCtx)
		if rp, ok := r.Context().Value(replayCtxKey{}).(*replayCtx); ok {
			rp.reached = rt.name
			if rp.route != rt.name { // authentication is skipped for replays: only its own route takes it
				problem.New(http.StatusConflict, problem.ReasonStateConflict, "Conflict",
					"a replay of route "+rp.route+" reached route "+rt.name).Write(w)
				return nil
			}
		} else {
			// Only a replay made in this process marks a request as one: a sender's header
			// goes neither to the backend nor into the queue.
			r.Header.Del("X-Hookgate-Replay-Of")
		}
	}
	// What Hookgate tells the backend about the webhook (async sets these headers; sync
	// routes set them with header_up and the placeholders) is never the sender's to say.
	for _, h := range webhookHeaders {
		if r.Header[h] != nil {
			r.Header.Del(h)
		}
	}
	start := time.Now()
	if ph != nil {
		ph.Set("http.webhook.source", rt.rc.Source())
	}
	handedOn := false
	var queued sender.Forwarded
	res, err := rt.rc.Handle(w, r, func(w http.ResponseWriter, r *http.Request, ev *receiver.Event) error {
		handedOn = true
		if ph != nil { // for the next handler (header_up …)
			ph.Set("http.webhook.event_id", ev.ID)
			ph.Set("http.webhook.verified", ev.Verified)
			ph.Set("http.webhook.duplicate", false)
		}
		if rt.fwd != nil {
			// A forced replay is sent again on purpose: a queued id derived from the webhook
			// would map it to the event already queued, and deliver nothing.
			rp, _ := r.Context().Value(replayCtxKey{}).(*replayCtx)
			window := rt.dedupe
			if rp != nil && rp.force {
				window = 0
			}
			fwd, err := rt.fwd.Forward(r.Context(), w, sender.Inbound{Source: ev.Source, EventID: ev.ID,
				Verified: ev.Verified, Header: r.Header, Body: ev.Body, DedupeWindow: window,
				RemoteAddr: r.RemoteAddr, Host: r.Host, TLS: r.TLS != nil})
			if err != nil {
				rt.logger.Error("cannot queue an accepted webhook", zap.String("event_id", ev.ID), zap.Error(err))
			}
			ev.Outcome, queued = fwd.Outcome, fwd
			return nil
		}
		return next.ServeHTTP(w, r)
	})
	if ph != nil {
		if !handedOn {
			ph.Set("http.webhook.event_id", res.EventID)
			ph.Set("http.webhook.verified", res.Verified)
			ph.Set("http.webhook.duplicate", res.Duplicate)
		}
		ph.Set("http.webhook.outcome", string(res.Reason))
	}
	rt.obs.observe(res)
	if rp, ok := r.Context().Value(replayCtxKey{}).(*replayCtx); ok && rp.route == rt.name {
		rp.outcome, rp.problem = string(res.Reason), res.Problem
	}
	if rt.log != nil {
		if server != nil && rt.server.Load() != server {
			rt.server.Store(server)
		}
		rt.record(r, res, queued, start, time.Since(start))
	}
	logger := rt.logger
	if err == nil && res.Status < 300 && (res.Reason == problem.ReasonAccepted || res.Reason == problem.ReasonQueued) {
		logger = rt.accepted // handed on and answered 2xx: sampled; anything else is always written
	}
	if ce := logger.Check(zapcore.InfoLevel, "webhook"); ce != nil {
		ce.Write(zap.String("route", rt.name), zap.String("source", rt.rc.Source()), zap.String("event_id", res.EventID),
			zap.String("outcome", string(res.Reason)), zap.Int("status", res.Status),
			zap.Duration("latency", time.Since(start)), zap.Error(err))
	}
	if res.Aborted {
		panic(http.ErrAbortHandler) // counted and logged: now drop the connection as reverse_proxy meant to
	}
	return err
}

// record adds one request to the route's log.
func (rt *Route) record(r *http.Request, res receiver.Result, queued sender.Forwarded, start time.Time, total time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	e := &reqlog.Entry{
		Record: reqlog.Record{ID: reqlog.NewID(start), Route: rt.name, Time: start, Remote: r.RemoteAddr, Method: r.Method,
			Host: r.Host, TLS: r.TLS != nil, Outcome: string(res.Reason), Status: res.Status, EventID: res.EventID,
			QueuedEventID: queued.EventID, QueuedDelivery: queued.DeliveryID,
			OrderKey: res.OrderKey, OrderValue: res.OrderValue,
			Stages: reqlog.Stages{Auth: ms(res.Stages.Auth), Parse: ms(res.Stages.Parse), Validate: ms(res.Stages.Validate),
				Store: ms(res.Stages.Store), Transform: ms(res.Stages.Transform), Total: ms(total)},
			BodySize: res.BodySize, BodyCut: res.BodySize > len(res.Body),
			Transformed: string(res.Transformed), TransformedSize: res.TransformedSize},
		RawHeader: r.Header, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Redact: rt.redactor, RawBody: res.Body,
	}
	if p := res.Problem; p != nil {
		e.Detail, e.Errors = p.Detail, p.Errors
	}
	e.Replayable = res.Passed && !e.BodyCut && res.Body != nil
	if rp, ok := r.Context().Value(replayCtxKey{}).(*replayCtx); ok {
		e.Replay, e.ReplayOf, e.Forced = true, rp.of, rp.force
		rp.id, rp.outcome = e.ID, e.Outcome
	}
	rt.log.Add(e)
}
