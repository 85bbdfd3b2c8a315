package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"go.uber.org/zap"
)

// Quarantine policies (RouteSpec.OnInvalid).
const (
	// OnInvalidReject answers a body the schema refuses with 422 (the default).
	OnInvalidReject = "reject"
	// OnInvalidQuarantine holds it, answers 202, and hands it on when released.
	OnInvalidQuarantine = "quarantine"
)

// releaseLease is how long a release holds a quarantined request while it hands it on.
const releaseLease = 5 * time.Minute

// hold is the route's receiver.Holder: the request, credentials redacted, held durably.
func (rt *Route) hold(r *http.Request, h receiver.Held) (string, error) {
	now := time.Now()
	it := &quarantine.Item{ID: quarantine.NewID(now), Route: rt.name, Time: now, EventID: h.EventID, Remote: r.RemoteAddr,
		Host: r.Host, URI: rt.redactor.URI(r.URL.Path, r.URL.RawQuery), TLS: r.TLS != nil, Header: rt.redactor.Header(r.Header),
		Body: append([]byte(nil), h.Body...), Violations: h.Violations}
	if it.Size() > rt.qlimits.WithDefaults().MaxBytes {
		return "", quarantine.ErrTooLarge
	}
	if err := rt.g.stores.Quarantine.Hold(r.Context(), it, rt.qlimits); err != nil {
		if errors.Is(err, quarantine.ErrFull) {
			rt.logger.Error("quarantine full: a request the schema refused was answered 503", zap.String("route", rt.name),
				zap.Int64("max_bytes", rt.qlimits.MaxBytes))
		}
		return "", err
	}
	first := "" // its pointer only: a violation's message may quote the body's values
	if len(h.Violations) > 0 {
		first = cut(h.Violations[0].Pointer, maxDriftPointer)
	}
	rt.quarantined.Warn("webhook quarantined", zap.String("route", rt.name), zap.String("id", it.ID),
		zap.String("event_id", h.EventID), zap.Int("violations", len(h.Violations)), zap.String("pointer", first))
	return it.ID, nil
}

// QuarantineSelector chooses quarantined requests: one by ID, those with a violation at
// (or below) Pointer, or every held one.
type QuarantineSelector struct {
	ID, Pointer string
	// Force releases without checking the schema ("release anyway").
	Force bool
}

// ReleaseAnswer is what a release did.
type ReleaseAnswer struct {
	Route string `json:"route"`
	// Forced is true for "release anyway": the schema was not checked.
	Forced bool `json:"forced"`
	// Released were handed on (or found handed on already: duplicate, stale); StillInvalid
	// stay held with their new violations; Failed stay held because the hand-off failed;
	// Busy were being released by another call.
	Released     int `json:"released"`
	StillInvalid int `json:"still_invalid"`
	Failed       int `json:"failed"`
	Busy         int `json:"busy"`
	// Items are the requests tried (the first 100).
	Items []ReleasedItem `json:"items"`
}

// ReleasedItem is one request a release tried.
type ReleasedItem struct {
	ID      string           `json:"id"`
	EventID string           `json:"event_id,omitempty"`
	State   quarantine.State `json:"state"`
	// Outcome and Status are how its hand-off ended; Detail why it failed.
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// RequestID is the release's record in the request log.
	RequestID  string              `json:"request_id,omitempty"`
	Violations []problem.Violation `json:"violations,omitempty"`
}

// quarantineRoute returns the named route for the quarantine's API.
func (g *Gateway) quarantineRoute(route string) (*Route, error) {
	rt, ok := g.route(route)
	if !ok {
		return nil, apiErr(http.StatusNotFound, problem.ReasonNotFound, "no webhook_receive route %q", route)
	}
	return rt, nil
}

// each calls fn for every held request of route that sel chooses, oldest first, each once;
// it stops at ctx's end.
func (g *Gateway) each(ctx context.Context, route string, sel QuarantineSelector, fn func(quarantine.Item) error) error {
	q := g.stores.Quarantine
	if sel.ID != "" {
		it, err := q.Get(ctx, route, sel.ID)
		if errors.Is(err, quarantine.ErrNotFound) {
			return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no request %q in the quarantine of route %q", sel.ID, route)
		}
		if err != nil {
			return storeErr(err)
		}
		if it.State != quarantine.Held {
			return apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s is %s, not held", sel.ID, it.State)
		}
		return fn(it)
	}
	after := ""
	for {
		page, err := q.List(ctx, route, quarantine.Filter{After: after, Limit: 200})
		if err != nil {
			return storeErr(err)
		}
		for _, it := range page {
			if ctx.Err() != nil {
				return nil
			}
			if sel.Pointer == "" || it.Matches(sel.Pointer) {
				if err := fn(it); err != nil {
					return err
				}
			}
		}
		if len(page) < 200 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// Release hands on the quarantined requests sel chooses, each checked again against the
// route's config of now and handed on as a replay is: through the route's server, dedupe
// and the stale-event guard applied, its credentials skipped (they were checked when it
// came). A request the schema still refuses stays held with its new violations, and so
// does one whose hand-off failed.
func (g *Gateway) Release(ctx context.Context, route string, sel QuarantineSelector) (ReleaseAnswer, error) {
	rt, err := g.quarantineRoute(route)
	if err != nil {
		return ReleaseAnswer{}, err
	}
	ans := ReleaseAnswer{Route: route, Forced: sel.Force, Items: []ReleasedItem{}}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	err = g.each(ctx, route, sel, func(it quarantine.Item) error {
		ri, err := rt.release(context.WithoutCancel(ctx), it, token, sel.Force)
		if err != nil {
			return err
		}
		switch {
		case ri.State == "":
			ans.Busy++
			return nil
		case ri.State == quarantine.Released:
			ans.Released++
		case ri.Outcome == string(problem.ReasonSchema):
			ans.StillInvalid++
		default:
			ans.Failed++
		}
		if len(ans.Items) < 100 {
			ans.Items = append(ans.Items, ri)
		}
		return nil
	})
	if err != nil {
		return ans, err
	}
	if sel.ID != "" && ans.Busy == 1 {
		return ans, apiErr(http.StatusConflict, problem.ReasonStateConflict, "request %s is being released by another call", sel.ID)
	}
	rt.logger.Info("quarantine released", zap.String("route", route), zap.Bool("forced", sel.Force), zap.String("id", sel.ID),
		zap.String("pointer", sel.Pointer), zap.Int("released", ans.Released), zap.Int("still_invalid", ans.StillInvalid),
		zap.Int("failed", ans.Failed))
	return ans, nil
}

// release hands one request on under a lease; a zero State means another release holds it.
func (rt *Route) release(ctx context.Context, it quarantine.Item, token string, force bool) (ReleasedItem, error) {
	q := rt.g.stores.Quarantine
	it, ok, err := q.Lease(ctx, rt.name, it.ID, token, releaseLease)
	if err != nil {
		return ReleasedItem{}, storeErr(err)
	}
	if !ok {
		return ReleasedItem{ID: it.ID}, nil
	}
	ri := ReleasedItem{ID: it.ID, EventID: it.EventID}
	settle := func(o quarantine.Outcome) (ReleasedItem, error) {
		if _, err := q.Settle(ctx, rt.name, it.ID, token, o, time.Now()); err != nil {
			return ReleasedItem{}, storeErr(fmt.Errorf("recording the release of %s (%s): %w", it.ID, o.Outcome, err))
		}
		ri.State, ri.Outcome, ri.Detail, ri.Violations = o.State, o.Outcome, o.Detail, o.Violations
		return ri, nil
	}
	v := it.View()
	rec := reqlog.Record{ID: it.ID, Host: it.Host, URI: it.URI, TLS: it.TLS, Header: it.Header, Body: v.Body, BodyBase64: v.BodyBase64}
	srv := rt.serverFor(rec.Host, rec.TLS)
	if srv == nil {
		return settle(quarantine.Outcome{State: quarantine.Held, Outcome: string(problem.ReasonStateConflict),
			Detail: "this instance cannot tell which of its servers serves the route (none listens on the port of " + it.Host + "); release from the instance that received it"})
	}
	req, rp, err := rebuild(ctx, rec, rt.name, receiver.Replay{Release: true, SkipSchema: force})
	if err != nil {
		return settle(quarantine.Outcome{State: quarantine.Held, Outcome: string(problem.ReasonStateConflict), Detail: "cannot be rebuilt: " + err.Error()})
	}
	w := &recorder{header: http.Header{}}
	srv.ServeHTTP(w, req)
	status := w.statusOr200()
	ri.Status, ri.RequestID = status, rp.id
	o := quarantine.Outcome{State: quarantine.Held, Outcome: rp.outcome, Forced: force, Request: rp.id}
	switch {
	case rp.reached == "":
		o.Outcome, o.Detail = string(problem.ReasonStateConflict), "its URI "+it.URI+" reaches no webhook_receive route now"
	case rp.reached != rt.name:
		o.Outcome, o.Detail = string(problem.ReasonStateConflict), "its URI "+it.URI+" now reaches route "+rp.reached
	case rp.outcome == string(problem.ReasonSchema):
		if rp.problem != nil {
			o.Violations = rp.problem.Errors
			o.Detail = rp.problem.Detail
		}
	case status >= 200 && status < 300 && released(rp.outcome):
		o.State = quarantine.Released
	case rp.problem != nil:
		o.Detail = rp.problem.Detail
	default:
		o.Detail = fmt.Sprintf("the hand-off answered %d", status)
	}
	return settle(o)
}

// released tells whether a release that ended with outcome handed the event on, or found
// it need not be.
func released(outcome string) bool {
	switch problem.Reason(outcome) {
	case problem.ReasonAccepted, problem.ReasonQueued, problem.ReasonDuplicate, problem.ReasonStale, problem.ReasonOrderAhead:
		return true
	}
	return false
}

// serverFor returns the server of the route's latest request, else the one that serves
// host (another instance's request, or one held before a reload), or nil.
func (rt *Route) serverFor(host string, isTLS bool) http.Handler {
	if srv, _ := rt.server.Load().(http.Handler); srv != nil {
		return srv
	}
	if rt.g.cfg.FindServer != nil {
		return rt.g.cfg.FindServer(host, isTLS)
	}
	return nil
}

// DropAnswer is what a drop did.
type DropAnswer struct {
	Route   string   `json:"route"`
	Dropped int      `json:"dropped"`
	Busy    int      `json:"busy"`
	IDs     []string `json:"ids"`
}

// Drop moves the held requests sel chooses to the history as dropped; requests a release
// is handing on are left.
func (g *Gateway) Drop(ctx context.Context, route string, sel QuarantineSelector) (DropAnswer, error) {
	rt, err := g.quarantineRoute(route)
	if err != nil {
		return DropAnswer{}, err
	}
	ans := DropAnswer{Route: route, IDs: []string{}}
	err = g.each(ctx, route, sel, func(it quarantine.Item) error {
		ok, err := g.stores.Quarantine.Settle(ctx, route, it.ID, "", quarantine.Outcome{State: quarantine.Dropped}, time.Now())
		if err != nil {
			return storeErr(err)
		}
		if !ok {
			ans.Busy++
			return nil
		}
		ans.Dropped++
		if len(ans.IDs) < 100 {
			ans.IDs = append(ans.IDs, it.ID)
		}
		return nil
	})
	if err != nil {
		return ans, err
	}
	rt.logger.Warn("quarantine dropped", zap.String("route", route), zap.String("id", sel.ID), zap.String("pointer", sel.Pointer),
		zap.Int("dropped", ans.Dropped))
	return ans, nil
}

// QuarantineView is GET /webhooks/inbound/<route>/quarantine.
type QuarantineView struct {
	Route string `json:"route"`
	// OnInvalid is the route's policy in the running config.
	OnInvalid string `json:"on_invalid"`
	quarantine.Stats
	// Items are the requests listed (held, unless ?state= asked for history).
	Items []quarantine.View `json:"items"`
	// Next is the cursor of the next page (?after=), "" on the last.
	Next string `json:"next,omitempty"`
}

// QuarantineConfig is a route's quarantine retention (with on_invalid quarantine).
type QuarantineConfig struct {
	// Retention is how long quarantined requests are kept, held ones included (a request
	// held longer is deleted unreleased, and counted in
	// caddy_webhook_quarantine_expired_total); at least 1m. Default "336h" (14 days).
	Retention string `json:"retention,omitempty"`
	// MaxBytes bounds the route's quarantine, held requests and history together; the
	// history is evicted first, and once held requests alone would pass it a new one is
	// answered 503 quarantine_full (the sender retries). Default 268435456 (256 MiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// Limits turns the config into the store's limits (nil: the defaults).
func (c *QuarantineConfig) Limits() (quarantine.Limits, error) {
	if c == nil {
		return quarantine.Limits{}, nil
	}
	l := quarantine.Limits{MaxBytes: c.MaxBytes}
	if c.Retention != "" {
		d, err := time.ParseDuration(c.Retention)
		if err != nil || d < time.Minute {
			return l, fmt.Errorf("quarantine retention %q: a duration of at least 1m (e.g. 336h)", c.Retention)
		}
		l.MaxAge = d
	}
	if c.MaxBytes < 0 || (c.MaxBytes > 0 && c.MaxBytes < 64<<10) {
		return l, fmt.Errorf("quarantine max_bytes %d: at least 64KiB", c.MaxBytes)
	}
	return l, nil
}

// ParseOnInvalid reads the words of the Caddyfile's `on_invalid reject|quarantine
// [{ retention <duration>  max_bytes <size> }]`.
func ParseOnInvalid(words []string) (string, *QuarantineConfig, error) {
	if len(words) == 0 || (words[0] != OnInvalidReject && words[0] != OnInvalidQuarantine) {
		return "", nil, fmt.Errorf("on_invalid reject|quarantine [{ retention <duration>  max_bytes <size> }]")
	}
	if len(words) == 1 {
		return words[0], nil, nil
	}
	if words[0] == OnInvalidReject {
		return "", nil, fmt.Errorf("on_invalid reject takes no options")
	}
	c := &QuarantineConfig{}
	for rest := words[1:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			return "", nil, fmt.Errorf("on_invalid quarantine: %s needs a value", rest[0])
		}
		switch rest[0] {
		case "retention":
			c.Retention = rest[1]
		case "max_bytes":
			n, err := humanize.ParseBytes(rest[1])
			if err != nil || n == 0 || n > 1<<40 {
				return "", nil, fmt.Errorf("on_invalid quarantine: max_bytes %q is not a size (e.g. 256MiB)", rest[1])
			}
			c.MaxBytes = int64(n)
		default:
			return "", nil, fmt.Errorf("on_invalid quarantine: unknown option %q (retention, max_bytes)", rest[0])
		}
	}
	if _, err := c.Limits(); err != nil {
		return "", nil, err
	}
	return words[0], c, nil
}
