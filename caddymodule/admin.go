package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/subscription"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// activeApp is the running webhooks app: the newest one started. During a reload the new
// config starts before the old one stops, so Stop only clears it if it is still its own.
var activeApp atomic.Pointer[App]

// AdminAPI is the `admin.api.webhooks` module: routes under /webhooks/ on Caddy's admin
// endpoint to inspect endpoints, deliveries and inbound counters, and to test, retry,
// resend and re-enable. It finds the running app at request time, so it works whether or
// not the app is configured (answering empty lists and 404s when it is not).
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.webhooks",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/webhooks/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

func apiErr(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/webhooks/"), "/")
	parts := strings.Split(rest, "/")
	method := func(m string) error {
		if r.Method != m {
			return apiErr(http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, m)
		}
		return nil
	}
	app := activeApp.Load()
	if rest == "subscriptions" || strings.HasPrefix(rest, "subscriptions/") {
		if app == nil {
			return apiErr(http.StatusServiceUnavailable, "no webhooks app is running")
		}
		app.subscriptionsAPI(DefaultSubscriptionsPrefix, nil).ServeHTTP(w, r)
		return nil
	}
	switch {
	case rest == "endpoints":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return a.endpoints(w, r, app)
	case rest == "deliveries":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return a.deliveries(w, r, app)
	case rest == "feeds":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return a.feeds(w, r, app)
	case len(parts) == 3 && parts[0] == "feeds" && parts[2] == "requeue":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		return a.requeueFeed(w, r, app, parts[1])
	case len(parts) == 3 && parts[0] == "inbound" && parts[2] == "order":
		return a.inboundOrder(w, r, app, parts[1])
	case len(parts) >= 3 && parts[0] == "inbound" && parts[2] == "requests":
		return a.inboundRequests(w, r, app, parts)
	case rest == "inbound":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return writeJSON(w, inbound.snapshot())
	case rest == "store":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		if app == nil {
			return apiErr(http.StatusNotFound, "no webhooks app is running")
		}
		return writeJSON(w, app.storeStatus())
	case len(parts) == 3 && parts[0] == "endpoints":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		return a.endpointAction(w, r, app, parts[1], parts[2])
	case len(parts) == 3 && parts[0] == "deliveries" && parts[2] == "retry":
		if err := method(http.MethodPost); err != nil {
			return err
		}
		if app == nil {
			return apiErr(http.StatusNotFound, "no webhooks app is running")
		}
		if ep, ok := queue.EndpointOf(parts[1]); ok && subscription.IsID(ep) {
			if _, live := app.Sender().Registry().Get(ep); !live {
				return apiErr(http.StatusConflict, "delivery %q belongs to the deleted subscription %s: nothing would deliver it", parts[1], ep)
			}
		}
		err := app.Sender().Requeue(r.Context(), parts[1])
		if errors.Is(err, queue.ErrNotFound) {
			return apiErr(http.StatusNotFound, "no delivery %q", parts[1])
		}
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, map[string]any{"id": parts[1], "requeued": true})
	}
	return apiErr(http.StatusNotFound, "no such webhooks admin route: %s %s", r.Method, r.URL.Path)
}

// storeStatusJSON is GET /webhooks/store: the running config's store and, for the
// embedded file, whether it was found damaged while running.
type storeStatusJSON struct {
	Store   string `json:"store"`
	Damaged bool   `json:"damaged"`
	Error   string `json:"error,omitempty"`
	// Tasks is how many background tasks (flushers, sweepers) are running; 0 once damage
	// stopped them. Absent for Redis.
	Tasks *int `json:"tasks,omitempty"`
}

func (a *App) storeStatus() storeStatusJSON {
	st := storeStatusJSON{Store: a.store.describe}
	if a.store.health != nil {
		dmg, tasks := a.store.health()
		st.Tasks = &tasks
		if dmg != nil {
			st.Damaged, st.Error = true, dmg.Error()
		}
	}
	return st
}

func storeErr(err error) error {
	if errors.Is(err, queue.ErrUnavailable) {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err, Message: "the store cannot be reached: " + err.Error()}
	}
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err, Message: err.Error()}
}

// attemptJSON is an attempt as the admin API shows it.
type attemptJSON struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
}

func toAttemptJSON(a queue.Attempt) attemptJSON {
	return attemptJSON{At: a.At, Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error}
}

// endpointJSON is an endpoint as the admin API shows it.
type endpointJSON struct {
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
	LastAttempt  *attemptJSON `json:"last_attempt,omitempty"`
	Error        string       `json:"error,omitempty"`
	// FilterFailures, for an endpoint with a filter, counts its filter's failures (run
	// time errors, over the publish's budget) and shows the last one.
	FilterFailures *sender.FilterStats `json:"filter_failures,omitempty"`
}

func (a *AdminAPI) endpoints(w http.ResponseWriter, r *http.Request, app *App) error {
	out := []endpointJSON{}
	if app != nil {
		eps := app.Sender().Registry().List()
		names := make([]string, len(eps))
		for i, e := range eps {
			names[i] = e.Name
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		sts, err := app.Sender().Queue().Statuses(ctx, names)
		cancel()
		for i, e := range eps {
			ej := endpointJSON{Name: e.Name, URL: e.RedactedURL(), Events: e.Events, Inbound: e.Inbound,
				Subscription: e.Subscription, Description: e.Description}
			if ej.Events == nil {
				ej.Events = []string{"*"}
			}
			if e.Filter != "" {
				fs := e.FilterStats()
				ej.FilterFailures = &fs
			}
			if err != nil {
				ej.Error = err.Error()
			} else {
				st := sts[i]
				ej.Disabled, ej.Reason, ej.Pending, ej.Delivered, ej.Dead = st.Disabled, st.Reason, st.Pending, st.Delivered, st.Dead
				if st.Last != nil {
					la := toAttemptJSON(*st.Last)
					ej.LastAttempt = &la
				}
			}
			out = append(out, ej)
		}
	}
	return writeJSON(w, out)
}

// deliveryJSON is a delivery as the admin API shows it (without its body).
type deliveryJSON struct {
	ID        string        `json:"id"`
	Endpoint  string        `json:"endpoint"`
	EventID   string        `json:"event_id"`
	EventType string        `json:"event_type"`
	BodyBytes int           `json:"body_bytes"`
	State     queue.State   `json:"state"`
	Created   time.Time     `json:"created"`
	NextAt    *time.Time    `json:"next_attempt_at,omitempty"`
	Attempts  []attemptJSON `json:"attempts"`
}

func (a *AdminAPI) deliveries(w http.ResponseWriter, r *http.Request, app *App) error {
	q := r.URL.Query()
	f := queue.Filter{State: queue.State(q.Get("state"))}
	switch f.State {
	case "", queue.Pending, queue.Delivered, queue.Dead:
	default:
		return apiErr(http.StatusBadRequest, "state %q: pending, delivered or dead", f.State)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > 1000 {
			return apiErr(http.StatusBadRequest, "limit %q: a number from 1 to 1000", l)
		}
		f.Limit = n
	}
	out := []deliveryJSON{}
	if app == nil {
		return writeJSON(w, out)
	}
	if ep := q.Get("endpoint"); ep != "" {
		_, isEndpoint := app.Sender().Registry().Get(ep)
		_, isFeed := app.feeds[strings.TrimPrefix(ep, "feed.")]
		// A deleted subscription's id still lists its dead letters.
		if !isEndpoint && !(isFeed && strings.HasPrefix(ep, "feed.")) && !subscription.IsID(ep) {
			return apiErr(http.StatusNotFound, "no endpoint %q (a feed's records are listed as endpoint feed.<name>)", ep)
		}
		f.Endpoints = []string{ep}
	} else {
		f.Endpoints = app.Sender().Registry().Names()
		// Deleted subscriptions' dead letters too: no configuration names them any more.
		gone, err := app.Sender().Queue().Abandoned(r.Context())
		if err != nil {
			return storeErr(err)
		}
		for _, ep := range gone {
			if _, ok := app.Sender().Registry().Get(ep); !ok {
				f.Endpoints = append(f.Endpoints, ep)
			}
		}
	}
	ds, err := app.Sender().Queue().List(r.Context(), f)
	if err != nil {
		return storeErr(err)
	}
	for _, d := range ds {
		dj := deliveryJSON{ID: d.ID, Endpoint: d.Endpoint, EventID: d.Event.ID, EventType: d.Event.Type, BodyBytes: len(d.Event.Body),
			State: d.State, Created: d.Created, Attempts: []attemptJSON{}}
		if d.State == queue.Pending {
			t := d.NextAt
			dj.NextAt = &t
		}
		for _, at := range d.Attempts {
			dj.Attempts = append(dj.Attempts, toAttemptJSON(at))
		}
		out = append(out, dj)
	}
	return writeJSON(w, out)
}

func (a *AdminAPI) endpointAction(w http.ResponseWriter, r *http.Request, app *App, name, action string) error {
	if app == nil {
		return apiErr(http.StatusNotFound, "no webhooks app is running")
	}
	s := app.Sender()
	if _, ok := s.Registry().Get(name); !ok {
		return apiErr(http.StatusNotFound, "no endpoint %q", name)
	}
	ctx := r.Context()
	switch action {
	case "test":
		if !s.Running() {
			return apiErr(http.StatusServiceUnavailable, "the webhooks app is not running")
		}
		res, err := s.Test(ctx, name)
		if err != nil {
			return apiErr(http.StatusInternalServerError, "%v", err)
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
	}
	return apiErr(http.StatusNotFound, "no endpoint action %q (test, resend-latest, retry, enable)", action)
}

var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
