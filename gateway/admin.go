package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/subscription"
)

// SubscriptionsPrefix is where the admin API serves the subscriptions API.
const SubscriptionsPrefix = "/webhooks/subscriptions"

// APIError is a refusal of the admin API, answered as problem+json.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Reason is the problem's reason.
	Reason problem.Reason
	// Detail says what was wrong.
	Detail string
	// Allow, for a 405, lists the methods the route takes.
	Allow string
}

func (e *APIError) Error() string { return e.Detail }

// Problem is the refusal as a problem document.
func (e *APIError) Problem() *problem.Problem {
	p := problem.New(e.Status, e.Reason, http.StatusText(e.Status), e.Detail)
	if e.Allow != "" {
		p.WithHeader("Allow", e.Allow)
	}
	if e.Status == http.StatusServiceUnavailable {
		p.WithHeader("Retry-After", "5")
	}
	return p
}

func apiErr(status int, reason problem.Reason, format string, args ...any) *APIError {
	return &APIError{Status: status, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// storeErr is the answer to a store error: 503 for an outage, else 500.
func storeErr(err error) *APIError {
	if errors.Is(err, storeerr.ErrUnavailable) { // whichever store it came from
		return apiErr(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "the store cannot be reached: %v", err)
	}
	return apiErr(http.StatusInternalServerError, problem.ReasonStoreError, "%v", err)
}

// WriteError answers err as problem+json: an *APIError as itself, a *ReplayRefused as
// its 409 (with replay_of and order), anything else as a 500.
func WriteError(w http.ResponseWriter, err error) {
	var refused *ReplayRefused
	if errors.As(err, &refused) {
		p := problem.New(http.StatusConflict, problem.ReasonStateConflict, "Conflict", refused.Error())
		writeProblemWith(w, p, struct {
			ReplayOf string       `json:"replay_of"`
			Order    *ReplayOrder `json:"order"`
		}{refused.ReplayOf, refused.Order})
		return
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = apiErr(http.StatusInternalServerError, problem.ReasonInternal, "%v", err)
	}
	ae.Problem().Write(w)
}

// writeProblemWith sends p with the extension members of ext (a struct) beside its own.
func writeProblemWith(w http.ResponseWriter, p *problem.Problem, ext any) {
	base, _ := json.Marshal(p)
	more, _ := json.Marshal(ext)
	if len(more) > 2 {
		base = append(append(base[:len(base)-1], ','), more[1:]...)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(base)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(base)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

// Admin serves the admin API's routes under /webhooks/ (Caddy's admin endpoint and the
// dashboard's api/) for the active gateway: endpoints, deliveries, feeds, inbound
// counters, the request log and replay, the stale-event guard's records, the store, and
// the subscriptions API. Every refusal is problem+json.
type Admin struct{}

// ServeHTTP answers one admin request.
func (Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := serveAdmin(w, r, Active()); err != nil {
		WriteError(w, err)
	}
}

func serveAdmin(w http.ResponseWriter, r *http.Request, g *Gateway) error {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/webhooks/"), "/")
	parts := strings.Split(rest, "/")
	method := func(m string) error {
		if r.Method != m {
			return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: m,
				Detail: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m)}
		}
		return nil
	}
	subscriptions := rest == "subscriptions" || strings.HasPrefix(rest, "subscriptions/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !subscriptions && !crosssite.FromThisSite(r) {
		// A write from a browser page of another site (the subscriptions API runs its own
		// guard, with allowed origins).
		return apiErr(http.StatusForbidden, problem.ReasonCrossSite,
			"a browser sent this request from another site; requests that change state must come from this host or from a server (no Origin)")
	}
	if subscriptions {
		if g == nil {
			return apiErr(http.StatusServiceUnavailable, problem.ReasonNotRunning, "no webhooks app is running")
		}
		g.SubscriptionsAPI(SubscriptionsPrefix, nil).ServeHTTP(w, r)
		return nil
	}
	// Routes that answer without a running gateway (empty lists).
	switch {
	case rest == "endpoints":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return g.endpoints(w, r)
	case rest == "deliveries":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return g.deliveries(w, r)
	case rest == "feeds":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return g.feeds(w, r)
	case rest == "activity":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return activityRoute(w, r)
	case rest == "inbound":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		routes := inbound.snapshot()
		if g != nil {
			g.mu.Lock()
			var quarantining []int
			for i := range routes {
				if rt := g.routes[routes[i].Route]; rt != nil {
					routes[i].Transform = rt.transform
					if rt.onInvalid == OnInvalidQuarantine {
						routes[i].OnInvalid = rt.onInvalid
						quarantining = append(quarantining, i)
					}
				}
			}
			g.mu.Unlock()
			for _, i := range quarantining {
				if st, err := g.stores.Quarantine.Stats(r.Context(), routes[i].Route); err == nil {
					routes[i].Quarantine = &st
				}
			}
		}
		return writeJSON(w, routes)
	}
	if g == nil {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no webhooks app is running")
	}
	switch {
	case len(parts) == 3 && parts[0] == "feeds" && parts[2] == "requeue":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		return g.requeueFeed(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "inbound" && parts[2] == "order":
		return g.inboundOrder(w, r, parts[1])
	case len(parts) >= 3 && parts[0] == "inbound" && parts[2] == "requests":
		return g.inboundRequests(w, r, parts)
	case len(parts) >= 3 && len(parts) <= 4 && parts[0] == "inbound" && parts[2] == "quarantine":
		return g.inboundQuarantine(w, r, parts)
	case len(parts) == 3 && parts[0] == "inbound" && parts[2] == "drift":
		return g.inboundDrift(w, r, parts[1])
	case rest == "store":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return writeJSON(w, g.StoreStatus())
	case rest == "search":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return g.search(w, r)
	case strings.HasPrefix(rest, "events/"):
		return g.eventStory(w, r, rest[len("events/"):]) // an event id may hold a "/" (sent as %2F)
	case len(parts) == 3 && parts[0] == "endpoints":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		return g.endpointAction(w, r, parts[1], parts[2])
	case len(parts) == 2 && parts[0] == "deliveries":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return g.delivery(w, r, parts[1])
	case len(parts) == 3 && parts[0] == "deliveries" && parts[2] == "retry":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		return g.retryDelivery(w, r, parts[1])
	}
	return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no such webhooks admin route: %s %s", r.Method, r.URL.Path)
}

// retryDelivery is POST /webhooks/deliveries/<id>/retry.
func (g *Gateway) retryDelivery(w http.ResponseWriter, r *http.Request, id string) error {
	if ep, ok := queue.EndpointOf(id); ok && subscription.IsID(ep) {
		if _, live := g.sender.Registry().Get(ep); !live {
			return apiErr(http.StatusConflict, problem.ReasonStateConflict, "delivery %q belongs to the deleted subscription %s: nothing would deliver it", id, ep)
		}
	}
	err := g.sender.Requeue(r.Context(), id)
	if errors.Is(err, queue.ErrNotFound) {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no delivery %q", id)
	}
	if err != nil {
		return storeErr(err)
	}
	return writeJSON(w, map[string]any{"id": id, "requeued": true})
}

// AttemptView is an attempt as the admin API shows it.
type AttemptView struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	// Response is the first bytes of a non-2xx answer's body.
	Response string `json:"response,omitempty"`
}

func attemptView(a queue.Attempt) AttemptView {
	return AttemptView{At: a.At, Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error, Response: a.Response}
}

// EndpointView is an endpoint as the admin API shows it.
type EndpointView struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Inbound bool     `json:"inbound,omitempty"`
	// Subscription is true for an endpoint made from a run-time subscription (its name is
	// the subscription's id).
	Subscription bool         `json:"subscription,omitempty"`
	Description  string       `json:"description,omitempty"`
	Disabled     bool         `json:"disabled"`
	Reason       string       `json:"disabled_reason,omitempty"`
	Pending      int64        `json:"pending"`
	Delivered    int64        `json:"delivered"`
	Dead         int64        `json:"dead"`
	LastAttempt  *AttemptView `json:"last_attempt,omitempty"`
	Error        string       `json:"error,omitempty"`
	// FilterFailures, for an endpoint with a filter, counts its filter's failures (run
	// time errors, over the publish's budget) and shows the last one.
	FilterFailures *sender.FilterStats `json:"filter_failures,omitempty"`
	// Filter and Transform are the endpoint's CEL filter and transform, if any.
	Filter    string `json:"filter,omitempty"`
	Transform string `json:"transform,omitempty"`
	// TransformFailures, for an endpoint with a transform, counts its failures (at enqueue,
	// and at the attempts that run it again) and shows the last one.
	TransformFailures *sender.FilterStats `json:"transform_failures,omitempty"`
	// Breaker is the endpoint's circuit breaker: its state (closed, open, half_open, or
	// off), since when, why it opened and when it next probes.
	Breaker BreakerView `json:"breaker"`
}

// BreakerView is an endpoint's circuit breaker as the admin API shows it.
type BreakerView struct {
	// State is closed, open, half_open (the cooldown has passed: the next delivery is
	// the probe) or off (disabled in config).
	State string `json:"state"`
	// Since is the last transition.
	Since *time.Time `json:"since,omitempty"`
	// Reason says why it opened.
	Reason string `json:"reason,omitempty"`
	// ProbeAt is when an open breaker lets one probe through (none while held by hand).
	ProbeAt *time.Time `json:"probe_at,omitempty"`
	// CooldownSeconds is the open breaker's current cooldown.
	CooldownSeconds float64 `json:"cooldown_seconds,omitempty"`
	// Manual is set while an operator holds it open.
	Manual bool `json:"manual,omitempty"`
}

func breakerView(b queue.Breaker, off bool, now time.Time) BreakerView {
	v := BreakerView{State: string(b.Reported(now)), Reason: b.Reason, Manual: b.Manual, CooldownSeconds: b.Cooldown.Seconds()}
	if !b.Since.IsZero() {
		v.Since = &b.Since
	}
	if b.Open() && !b.Manual {
		v.ProbeAt = &b.Until
	}
	if off && !b.Open() {
		v.State = "off"
	}
	return v
}

func (g *Gateway) endpoints(w http.ResponseWriter, r *http.Request) error {
	out := []EndpointView{}
	if g != nil {
		eps := g.sender.Registry().List()
		names := make([]string, len(eps))
		for i, e := range eps {
			names[i] = e.Name
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		sts, err := g.sender.Queue().Statuses(ctx, names)
		cancel()
		for i, e := range eps {
			ev := EndpointView{Name: e.Name, URL: e.RedactedURL(), Events: e.Events, Inbound: e.Inbound,
				Subscription: e.Subscription, Description: e.Description}
			if ev.Events == nil {
				ev.Events = []string{"*"}
			}
			if e.Filter != "" {
				fs := e.FilterStats()
				ev.FilterFailures, ev.Filter = &fs, e.Filter
			}
			if e.Transform != "" {
				ts := e.TransformStats()
				ev.TransformFailures, ev.Transform = &ts, e.Transform
			}
			if err != nil {
				ev.Error = err.Error()
			} else {
				st := sts[i]
				ev.Disabled, ev.Reason, ev.Pending, ev.Delivered, ev.Dead = st.Disabled, st.Reason, st.Pending, st.Delivered, st.Dead
				ev.Breaker = breakerView(st.Breaker, e.Breaker.Off, time.Now())
				if st.Last != nil {
					la := attemptView(*st.Last)
					ev.LastAttempt = &la
				}
			}
			out = append(out, ev)
		}
	}
	return writeJSON(w, out)
}

// DeliveryView is a delivery as the admin API shows it (without its body).
type DeliveryView struct {
	ID        string        `json:"id"`
	Endpoint  string        `json:"endpoint"`
	EventID   string        `json:"event_id"`
	EventType string        `json:"event_type"`
	BodyBytes int           `json:"body_bytes"`
	State     queue.State   `json:"state"`
	Created   time.Time     `json:"created"`
	NextAt    *time.Time    `json:"next_attempt_at,omitempty"`
	Attempts  []AttemptView `json:"attempts"`
	// TransformError is set when the endpoint's transform failed at enqueue: the delivery
	// holds the original body, and each attempt runs the transform again first.
	TransformError string `json:"transform_error,omitempty"`
	// Body is the body stored for the endpoint (its transform's output, if it has one):
	// only in GET /webhooks/deliveries/<id>.
	Body string `json:"body,omitempty"`
}

// limitParam reads ?limit=, a number from 1 to 1000 (0 when absent).
func limitParam(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "limit %q: a number from 1 to 1000", l)
	}
	return n, nil
}

func (g *Gateway) deliveries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := queue.Filter{State: queue.State(q.Get("state"))}
	switch f.State {
	case "", queue.Pending, queue.Delivered, queue.Dead:
	default:
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "state %q: pending, delivered or dead", f.State)
	}
	var err error
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	out := []DeliveryView{}
	if g == nil {
		return writeJSON(w, out)
	}
	reg := g.sender.Registry()
	unknown := "" // an endpoint the config does not name: listed if the queue holds something for it
	if ep := q.Get("endpoint"); ep != "" {
		_, isEndpoint := reg.Get(ep)
		_, isFeed := g.Feed(strings.TrimPrefix(ep, feedPrefix))
		// A deleted subscription's id still lists its dead letters.
		if !isEndpoint && !(isFeed && strings.HasPrefix(ep, feedPrefix)) && !subscription.IsID(ep) {
			unknown = ep // removed by a reload, say: its queue is still in the store
		}
		f.Endpoints = []string{ep}
	} else {
		f.Endpoints = reg.Names()
		// Deleted subscriptions' dead letters too: no configuration names them any more.
		gone, err := g.sender.Queue().Abandoned(r.Context())
		if err != nil {
			return storeErr(err)
		}
		for _, ep := range gone {
			if _, ok := reg.Get(ep); !ok {
				f.Endpoints = append(f.Endpoints, ep)
			}
		}
	}
	ds, err := g.sender.Queue().List(r.Context(), f)
	if err != nil {
		return storeErr(err)
	}
	if unknown != "" && len(ds) == 0 {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no endpoint %q, and no delivery of one by that name (a feed's records are listed as endpoint feed.<name>)", unknown)
	}
	for _, d := range ds {
		out = append(out, deliveryView(d))
	}
	return writeJSON(w, out)
}

func deliveryView(d queue.Delivery) DeliveryView {
	dv := DeliveryView{ID: d.ID, Endpoint: d.Endpoint, EventID: d.Event.ID, EventType: d.Event.Type, BodyBytes: len(d.Event.Body),
		State: d.State, Created: d.Created, Attempts: []AttemptView{}, TransformError: d.Event.TransformError}
	if d.State == queue.Pending {
		t := d.NextAt
		dv.NextAt = &t
	}
	for _, at := range d.Attempts {
		dv.Attempts = append(dv.Attempts, attemptView(at))
	}
	return dv
}

// delivery is GET /webhooks/deliveries/<id>: one delivery with its body.
func (g *Gateway) delivery(w http.ResponseWriter, r *http.Request, id string) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	d, err := g.sender.Queue().Get(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no delivery %q", id)
	}
	if err != nil {
		return storeErr(err)
	}
	dv := deliveryView(d)
	dv.Body = string(d.Event.Body)
	return writeJSON(w, dv)
}

func (g *Gateway) endpointAction(w http.ResponseWriter, r *http.Request, name, action string) error {
	s := g.sender
	if _, ok := s.Registry().Get(name); !ok {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no endpoint %q", name)
	}
	ctx := r.Context()
	switch action {
	case "test":
		if !s.Running() {
			return apiErr(http.StatusServiceUnavailable, problem.ReasonNotRunning, "the webhooks app is not running")
		}
		res, err := s.Test(ctx, name)
		if err != nil {
			return apiErr(http.StatusInternalServerError, problem.ReasonInternal, "%v", err)
		}
		return writeJSON(w, res)
	case "resend-latest":
		n, err := s.ResendLatest(ctx, name)
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, map[string]any{"endpoint": name, "queued": n})
	case "retry":
		n, err := s.RequeueDead(ctx, name)
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, map[string]any{"endpoint": name, "requeued": n})
	case "enable":
		if err := s.Enable(ctx, name); err != nil {
			return storeErr(err)
		}
		return writeJSON(w, map[string]any{"endpoint": name, "enabled": true})
	case "breaker-open", "breaker-close":
		open := action == "breaker-open"
		n, err := s.SetBreaker(ctx, name, open)
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, map[string]any{"endpoint": name, "breaker": map[bool]string{true: "open", false: "closed"}[open], "rescheduled": n})
	}
	return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no endpoint action %q (test, resend-latest, retry, enable, breaker-open, breaker-close)", action)
}

// feeds answers GET /webhooks/feeds: each feed's pending and served records and its last
// call (when, from where, how many records and bytes), so an operator sees when the
// caller stopped calling.
func (g *Gateway) feeds(w http.ResponseWriter, r *http.Request) error {
	out := []sender.FeedStatus{}
	if g != nil {
		for _, f := range g.sender.Feeds() {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			st, err := f.Status(ctx)
			cancel()
			if err != nil {
				return storeErr(err)
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return writeJSON(w, out)
}

// requeueFeed answers POST /webhooks/feeds/<name>/requeue?since=<RFC 3339 time or
// duration ago> or ?id=<record id>: served records become pending again.
func (g *Gateway) requeueFeed(w http.ResponseWriter, r *http.Request, name string) error {
	f, ok := g.Feed(name)
	if !ok {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no feed %q", name)
	}
	q := r.URL.Query()
	if len(q["id"]) > 1 || len(q["since"]) > 1 {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give id or since once")
	}
	id, sinceText := q.Get("id"), q.Get("since")
	var since time.Time
	switch {
	case id != "" && sinceText != "":
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give id or since, not both")
	case id == "" && sinceText == "":
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give ?since=<RFC 3339 time, or a duration ago such as 2h> or ?id=<record id>")
	case sinceText != "":
		if t, err := time.Parse(time.RFC3339, sinceText); err == nil {
			since = t
		} else if d, err := time.ParseDuration(sinceText); err == nil && d > 0 {
			since = time.Now().Add(-d)
		} else {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "since %q: an RFC 3339 time or a positive duration", sinceText)
		}
	}
	n, err := f.Requeue(r.Context(), id, since)
	if errors.Is(err, queue.ErrNotFound) {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no served record %q in feed %s", id, name)
	}
	if err != nil {
		return storeErr(err)
	}
	feedRecords.WithLabelValues(name, "requeued").Add(float64(n))
	return writeJSON(w, map[string]any{"feed": name, "requeued": n})
}
