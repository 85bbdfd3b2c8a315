package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/internal/series"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender/queue"
)

// The operations console's routes: recent activity (this instance's series), search by
// event, delivery or request id, and one event's story.
const (
	// maxSearchEndpoints bounds the endpoints an event id is looked up in (one read each).
	maxSearchEndpoints = 2000
	// maxSearchID bounds a searched id.
	maxSearchID = 200
)

// instanceName names this process in the console: each instance counts its own activity.
var instanceName = func() string {
	h, err := os.Hostname()
	if err != nil {
		h = "localhost"
	}
	return fmt.Sprintf("%s pid %d", h, os.Getpid())
}()

// activityRoute is GET /webhooks/activity[?window=10m|1h] (default 1h).
func activityRoute(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if k != "window" {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "unknown parameter %q: window=10m or 1h", k)
		}
	}
	if len(q["window"]) > 1 || (len(q["window"]) == 1 && q.Get("window") == "") {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "window: give 10m or 1h once (or leave it out for 1h)")
	}
	win := series.Long
	switch q.Get("window") {
	case "", "1h":
	case "10m":
		win = series.Short
	default:
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "window %q: 10m or 1h", q.Get("window"))
	}
	return writeJSON(w, activity.view(win, time.Now(), instanceName))
}

// RequestMatch is a request log record found by a search.
type RequestMatch struct {
	Route   string    `json:"route"`
	ID      string    `json:"id"`
	EventID string    `json:"event_id,omitempty"`
	Time    time.Time `json:"time"`
	Outcome string    `json:"outcome"`
	Status  int       `json:"status"`
}

// SearchResult is GET /webhooks/search?id=: what the request logs and the queue hold
// under an event id, a delivery id or a request id.
type SearchResult struct {
	ID string `json:"id"`
	// EventIDs are the events found, each with a story at /webhooks/events/<id>.
	EventIDs   []string       `json:"event_ids"`
	Requests   []RequestMatch `json:"requests"`
	Deliveries []DeliveryView `json:"deliveries"`
	// Partial is true when the event id was looked up in the first maxSearchEndpoints
	// endpoints only.
	Partial bool `json:"partial,omitempty"`
}

// EventStory is GET /webhooks/events/<event id>: the inbound requests that carried the
// event (from the request logs), and each delivery with every attempt, oldest first.
type EventStory struct {
	EventID    string          `json:"event_id"`
	Requests   []reqlog.Record `json:"requests"`
	Deliveries []DeliveryView  `json:"deliveries"`
	Partial    bool            `json:"partial,omitempty"`
}

// searchID reads and checks ?id=.
func searchID(r *http.Request) (string, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "id" {
			return "", apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "unknown parameter %q: give id", k)
		}
	}
	if len(q["id"]) != 1 {
		return "", apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give id once: an event id, a delivery id or a request id")
	}
	return checkID(strings.TrimSpace(q.Get("id")))
}

func checkID(id string) (string, error) {
	if id == "" || len(id) > maxSearchID || strings.ContainsAny(id, "\x00\r\n") || !utf8.ValidString(id) {
		return "", apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "id: 1 to %d bytes of UTF-8 text, one line", maxSearchID)
	}
	return id, nil
}

// search is GET /webhooks/search?id=.
func (g *Gateway) search(w http.ResponseWriter, r *http.Request) error {
	id, err := searchID(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out := SearchResult{ID: id, EventIDs: []string{}, Requests: []RequestMatch{}, Deliveries: []DeliveryView{}}
	recs, err := g.findRequests(ctx, id)
	if err != nil {
		return storeErr(err)
	}
	events := map[string]bool{} // the event ids found
	candidates := []string{id}  // what may be an event id: the id, the requests' events
	for _, rec := range recs {
		out.Requests = append(out.Requests, RequestMatch{Route: rec.Route, ID: rec.ID, EventID: rec.EventID, Time: rec.Time, Outcome: rec.Outcome, Status: rec.Status})
		if rec.EventID != "" && !events[rec.EventID] {
			events[rec.EventID] = true
			if rec.EventID != id {
				candidates = append(candidates, rec.EventID)
			}
		}
	}
	// An async route's request names the delivery it queued (under an event id of the
	// queue's own): found with the request.
	seen := map[string]bool{}
	for _, rec := range recs {
		if rec.QueuedDelivery == "" || seen[rec.QueuedDelivery] {
			continue
		}
		seen[rec.QueuedDelivery] = true
		d, ok, err := g.deliveryIfAny(ctx, rec.QueuedDelivery)
		if err != nil {
			return storeErr(err)
		}
		if ok {
			out.Deliveries = append(out.Deliveries, deliveryView(d))
		}
	}
	// A delivery id names its delivery; anything else may be an event id.
	if _, ok := queue.EndpointOf(id); ok && !seen[id] {
		d, ok, err := g.deliveryIfAny(ctx, id)
		if err != nil {
			return storeErr(err)
		}
		if ok {
			out.Deliveries = append(out.Deliveries, deliveryView(d))
			events[d.Event.ID] = true
			candidates = nil
		}
	}
	for _, ev := range candidates {
		ds, partial, err := g.findDeliveries(ctx, ev)
		if err != nil {
			return storeErr(err)
		}
		out.Partial = out.Partial || partial
		for _, d := range ds {
			if !seen[d.ID] {
				seen[d.ID] = true
				out.Deliveries = append(out.Deliveries, deliveryView(d))
			}
			events[ev] = true
		}
	}
	for ev := range events {
		out.EventIDs = append(out.EventIDs, ev)
	}
	sort.Strings(out.EventIDs)
	sort.Slice(out.Deliveries, func(i, j int) bool { return out.Deliveries[i].Created.Before(out.Deliveries[j].Created) })
	return writeJSON(w, out)
}

// eventStory is GET /webhooks/events/<event id>.
func (g *Gateway) eventStory(w http.ResponseWriter, r *http.Request, id string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET", Detail: "read an event's story with GET"}
	}
	id, err := checkID(id)
	if err != nil {
		return err
	}
	if len(r.URL.Query()) > 0 {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "an event's story takes no parameters")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	recs, err := g.findRequests(ctx, id)
	if err != nil {
		return storeErr(err)
	}
	out := EventStory{EventID: id, Requests: []reqlog.Record{}, Deliveries: []DeliveryView{}}
	ds, partial, err := g.findDeliveries(ctx, id)
	if err != nil {
		return storeErr(err)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.ID] = true
	}
	for _, rec := range recs {
		if rec.EventID != id && rec.QueuedEventID != id {
			continue
		}
		out.Requests = append(out.Requests, rec)
		// An async route's hand-off: the delivery it queued, under the queue's event id.
		if rec.QueuedDelivery != "" && !seen[rec.QueuedDelivery] {
			seen[rec.QueuedDelivery] = true
			d, ok, err := g.deliveryIfAny(ctx, rec.QueuedDelivery)
			if err != nil {
				return storeErr(err)
			}
			if ok {
				ds = append(ds, d)
			}
		}
	}
	out.Partial = partial
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, deliveryView(d))
	}
	if len(out.Requests) == 0 && len(out.Deliveries) == 0 {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no request log record and no delivery of event %q", id)
	}
	sort.Slice(out.Requests, func(i, j int) bool { return out.Requests[i].Time.Before(out.Requests[j].Time) })
	sort.Slice(out.Deliveries, func(i, j int) bool { return out.Deliveries[i].Created.Before(out.Deliveries[j].Created) })
	return writeJSON(w, out)
}

// findRequests returns the request log records, on every route that keeps a log, whose id
// or event id is id, newest first per route.
func (g *Gateway) findRequests(ctx context.Context, id string) ([]reqlog.Record, error) {
	g.mu.RLock()
	type logged struct {
		name string
		log  reqlog.Log
	}
	var rts []logged
	for name, rt := range g.routes {
		if rt != nil && rt.log != nil {
			rts = append(rts, logged{name, rt.log})
		}
	}
	g.mu.RUnlock()
	sort.Slice(rts, func(i, j int) bool { return rts[i].name < rts[j].name })
	var out []reqlog.Record
	for _, rt := range rts {
		recs, err := rt.log.List(ctx, rt.name, reqlog.Filter{ID: id, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("request log of %s: %w", rt.name, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// findDeliveries returns the delivery of event id to each endpoint (delivery ids are made
// from the endpoint and the event id, so this is one read per endpoint), feeds' and
// deleted subscriptions' included; partial when there were more than maxSearchEndpoints.
func (g *Gateway) findDeliveries(ctx context.Context, id string) ([]queue.Delivery, bool, error) {
	names := g.sender.Registry().Names()
	for _, f := range g.sender.Feeds() {
		names = append(names, f.Endpoint()) // a feed's records are its endpoint's deliveries
	}
	gone, err := g.sender.Queue().Abandoned(ctx)
	if err != nil {
		return nil, false, err
	}
	names = append(names, gone...)
	partial := len(names) > maxSearchEndpoints
	if partial {
		names = names[:maxSearchEndpoints]
	}
	var out []queue.Delivery
	seen := map[string]bool{}
	for _, ep := range names {
		did := queue.DeliveryID(ep, id)
		if seen[did] {
			continue
		}
		seen[did] = true
		d, ok, err := g.deliveryIfAny(ctx, did)
		if err != nil {
			return nil, false, err
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, partial, nil
}

// deliveryIfAny reads one delivery; ok is false when there is none by that id.
func (g *Gateway) deliveryIfAny(ctx context.Context, id string) (queue.Delivery, bool, error) {
	d, err := g.sender.Queue().Get(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return queue.Delivery{}, false, nil
	}
	return d, err == nil, err
}
