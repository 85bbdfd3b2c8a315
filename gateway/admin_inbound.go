package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"go.uber.org/zap"
)

// loggedRoute returns the named route if it keeps a request log.
func (g *Gateway) loggedRoute(route string) (*Route, error) {
	rt, ok := g.route(route)
	if !ok {
		return nil, apiErr(http.StatusNotFound, problem.ReasonNotFound, "no webhook_receive route %q", route)
	}
	if rt.log == nil {
		return nil, apiErr(http.StatusNotFound, problem.ReasonNotFound, "route %q keeps no request log (log_requests 0)", route)
	}
	return rt, nil
}

// inboundRequests serves the request log: GET /webhooks/inbound/<route>/requests[?outcome=&limit=],
// GET …/requests/<id>, POST …/requests/<id>/replay[?force=true[&older=true]].
func (g *Gateway) inboundRequests(w http.ResponseWriter, r *http.Request, parts []string) error {
	route := parts[1]
	rt, err := g.loggedRoute(route)
	if err != nil {
		return err
	}
	get := func() error {
		if r.Method != http.MethodGet {
			return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET", Detail: "use GET"}
		}
		return nil
	}
	switch len(parts) {
	case 3:
		if err := get(); err != nil {
			return err
		}
		f := reqlog.Filter{Outcome: r.URL.Query().Get("outcome")}
		if !knownOutcome(f.Outcome) {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "outcome %q: refused, or one of the outcomes of a webhook (%s)", f.Outcome, outcomeList())
		}
		if f.Limit, err = limitParam(r); err != nil {
			return err
		}
		recs, err := rt.log.List(r.Context(), route, f)
		if err != nil {
			return storeErr(err)
		}
		if recs == nil {
			recs = []reqlog.Record{}
		}
		return writeJSON(w, recs)
	case 4:
		if err := get(); err != nil {
			return err
		}
		rec, err := rt.log.Get(r.Context(), route, parts[3])
		if errors.Is(err, reqlog.ErrNotFound) {
			return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no request %q in the log of route %q", parts[3], route)
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
			return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "POST", Detail: "replay with POST"}
		}
		var force, older bool
		for _, p := range []struct {
			name string
			v    *bool
		}{{"force", &force}, {"older", &older}} {
			if len(r.URL.Query()[p.name]) > 1 {
				return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give %s once", p.name)
			}
			switch f := r.URL.Query().Get(p.name); f {
			case "", "false":
			case "true":
				*p.v = true
			default:
				return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "%s %q: true or false", p.name, f)
			}
		}
		if older && !force {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "older=true confirms a forced replay (force=true) of an event older than its record's newest; without force the stale-event guard applies")
		}
		ans, err := g.Replay(r.Context(), route, parts[3], force, older)
		if err != nil {
			return err
		}
		return writeJSON(w, ans)
	}
	return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no such route: %s", strings.Join(parts, "/"))
}

// OrderView is a record's newest order value in GET /webhooks/inbound/<route>/order.
type OrderView struct {
	Route string `json:"route"`
	receiver.OrderState
}

// ClearView is what DELETE /webhooks/inbound/<route>/order did.
type ClearView struct {
	Route   string `json:"route"`
	Key     string `json:"record_key"`
	Cleared bool   `json:"cleared"`
}

// inboundOrder serves GET and DELETE /webhooks/inbound/<route>/order?key=<record key>: a
// record's newest value of the stale-event guard, and its reset. It is reached through
// Caddy's admin endpoint (its Host and Origin checks) or the dashboard's api/ (its
// X-Hookgate-Dashboard header and same-origin check on anything but GET).
func (g *Gateway) inboundOrder(w http.ResponseWriter, r *http.Request, route string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET, DELETE",
			Detail: r.Method + " " + r.URL.Path + ": use GET or DELETE"}
	}
	rt, ok := g.route(route)
	if !ok {
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no webhook_receive route %q", route)
	}
	keys := r.URL.Query()["key"]
	if len(keys) != 1 {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give the record key once: ?key=<record key> (the order_key of a request in the request log)")
	}
	key := keys[0]
	if r.Method == http.MethodGet {
		st, err := rt.rc.OrderRecord(r.Context(), key)
		if err != nil {
			return orderErr(route, err)
		}
		return writeJSON(w, OrderView{Route: route, OrderState: st})
	}
	found, err := rt.rc.ClearOrder(r.Context(), key)
	if err != nil {
		return orderErr(route, err)
	}
	rt.logger.Info("order value cleared by the admin API", zap.String("route", route), zap.String("record_key", key),
		zap.Bool("was_recorded", found))
	return writeJSON(w, ClearView{Route: route, Key: key, Cleared: found})
}

// orderErr is the answer to an error of the guard's operator calls.
func orderErr(route string, err error) error {
	switch {
	case errors.Is(err, receiver.ErrNoOrderGuard):
		return apiErr(http.StatusNotFound, problem.ReasonNotFound, "route %q has no stale-event guard (order_by)", route)
	case errors.Is(err, receiver.ErrRecordKey):
		return apiErr(http.StatusBadRequest, problem.ReasonOrderValue, "%v", err)
	case errors.Is(err, storeerr.ErrUnavailable):
		return apiErr(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "%v", err)
	}
	return apiErr(http.StatusInternalServerError, problem.ReasonStoreError, "%v", err)
}

// knownOutcome tells whether o filters the request log by something it can hold: every
// outcome, "refused" (every 4xx/5xx), or nothing.
func knownOutcome(o string) bool {
	if o == "" || o == "refused" {
		return true
	}
	for _, r := range problem.InboundReasons {
		if string(r) == o {
			return true
		}
	}
	return false
}

func outcomeList() string {
	names := make([]string, len(problem.InboundReasons))
	for i, r := range problem.InboundReasons {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// inboundQuarantine serves a route's quarantine: GET /webhooks/inbound/<route>/quarantine
// [?state=held|released|dropped&pointer=&after=&limit=], GET …/quarantine/<id>, POST
// …/quarantine/release[?id=|?pointer=][&force=true] and POST …/quarantine/drop
// (?id=, ?pointer= or ?all=true: dropping is explicit).
func (g *Gateway) inboundQuarantine(w http.ResponseWriter, r *http.Request, parts []string) error {
	route := parts[1]
	rt, err := g.quarantineRoute(route)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for name, vs := range q {
		if len(vs) > 1 {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give %s once", name)
		}
		if vs[0] == "" { // release?id= must not mean "every held request"
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "%s is empty: give it a value, or leave it out", name)
		}
	}
	if len(parts) == 3 {
		for k := range q {
			switch k {
			case "state", "pointer", "after", "limit":
			default:
				return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "unknown parameter %q: state, pointer, after or limit", k)
			}
		}
		if a := q.Get("after"); a != "" && quarantine.IDTime(a).IsZero() {
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "after %q: the id of a quarantined request (q_…), the last of the previous page", a)
		}
		if r.Method != http.MethodGet {
			return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET", Detail: "use GET; release and drop are POST …/quarantine/release and …/quarantine/drop"}
		}
		state := quarantine.State(q.Get("state"))
		switch state {
		case "", quarantine.Held, quarantine.Released, quarantine.Dropped:
		default:
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "state %q: held, released or dropped", state)
		}
		limit, err := limitParam(r)
		if err != nil {
			return err
		}
		if limit == 0 {
			limit = 50
		}
		pointer := q.Get("pointer")
		if err := checkPointer(pointer); err != nil {
			return err
		}
		st, err := g.stores.Quarantine.Stats(r.Context(), route)
		if err != nil {
			return storeErr(err)
		}
		view := QuarantineView{Route: route, OnInvalid: rt.onInvalid, Stats: st, Items: []quarantine.View{}}
		after := q.Get("after")
		for len(view.Items) < limit {
			page, err := g.stores.Quarantine.List(r.Context(), route, quarantine.Filter{State: state, After: after, Limit: limit})
			if err != nil {
				return storeErr(err)
			}
			for _, it := range page {
				after = it.ID
				if pointer != "" && !it.Matches(pointer) {
					continue
				}
				view.Items = append(view.Items, it.View())
				if len(view.Items) == limit {
					view.Next = it.ID
					break
				}
			}
			if len(page) < limit {
				break
			}
		}
		return writeJSON(w, view)
	}
	switch parts[3] {
	case "release", "drop":
	default:
		if r.Method != http.MethodGet {
			return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET", Detail: "use GET"}
		}
		it, err := g.stores.Quarantine.Get(r.Context(), route, parts[3])
		if errors.Is(err, quarantine.ErrNotFound) {
			return apiErr(http.StatusNotFound, problem.ReasonNotFound, "no request %q in the quarantine of route %q", parts[3], route)
		}
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, it.View())
	}
	if r.Method != http.MethodPost {
		return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "POST", Detail: parts[3] + " with POST"}
	}
	sel := QuarantineSelector{ID: q.Get("id"), Pointer: q.Get("pointer")}
	if sel.ID != "" && sel.Pointer != "" {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give id or pointer, not both")
	}
	if err := checkPointer(sel.Pointer); err != nil {
		return err
	}
	for k := range q {
		switch k {
		case "id", "pointer":
		case "force":
			if parts[3] != "release" {
				return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "force is for release")
			}
		case "all":
			if parts[3] != "drop" {
				return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "all is for drop (a release without id or pointer releases every held request)")
			}
		default:
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "unknown parameter %q: id, pointer, force (release) or all (drop)", k)
		}
	}
	bools := map[string]bool{}
	for _, name := range []string{"force", "all"} {
		switch v := q.Get(name); v {
		case "", "false":
		case "true":
			bools[name] = true
		default:
			return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "%s %q: true or false", name, v)
		}
	}
	sel.Force = bools["force"]
	if parts[3] == "release" {
		ans, err := g.Release(r.Context(), route, sel)
		if err != nil {
			return err
		}
		return writeJSON(w, ans)
	}
	if bools["all"] && (sel.ID != "" || sel.Pointer != "") {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "give id, pointer or all=true, not several")
	}
	if sel.ID == "" && sel.Pointer == "" && !bools["all"] {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "say what to drop: ?id=<request>, ?pointer=<JSON pointer> or ?all=true")
	}
	ans, err := g.Drop(r.Context(), route, sel)
	if err != nil {
		return err
	}
	return writeJSON(w, ans)
}

// checkPointer refuses a pointer that is not a JSON pointer ("" is none).
func checkPointer(p string) error {
	if p != "" && !strings.HasPrefix(p, "/") {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "pointer %q: a JSON pointer (\"/New/Id\"; * matches any array index or key)", p)
	}
	return nil
}

// DriftView is GET /webhooks/inbound/<route>/drift.
type DriftView struct {
	Route string `json:"route"`
	// Groups are the violations and unnamed fields seen, most seen first.
	Groups []quarantine.Group `json:"groups"`
}

// inboundDrift serves GET /webhooks/inbound/<route>/drift and DELETE (the report starts
// again).
func (g *Gateway) inboundDrift(w http.ResponseWriter, r *http.Request, route string) error {
	rt, err := g.quarantineRoute(route)
	if err != nil {
		return err
	}
	if len(r.URL.RawQuery) > 0 {
		return apiErr(http.StatusBadRequest, problem.ReasonInvalidQuery, "the drift report takes no parameters")
	}
	switch r.Method {
	case http.MethodGet:
		gs, err := g.Drift(r.Context(), route)
		if err != nil {
			return storeErr(err)
		}
		return writeJSON(w, DriftView{Route: route, Groups: gs})
	case http.MethodDelete:
		g.drift.forget(route) // this instance's counts not yet flushed go too
		if err := g.stores.Quarantine.ClearDrift(r.Context(), route); err != nil {
			return storeErr(err)
		}
		rt.logger.Info("drift report cleared by the admin API", zap.String("route", route))
		return writeJSON(w, DriftView{Route: route, Groups: []quarantine.Group{}})
	}
	return &APIError{Status: http.StatusMethodNotAllowed, Reason: problem.ReasonMethod, Allow: "GET, DELETE", Detail: "use GET or DELETE"}
}
