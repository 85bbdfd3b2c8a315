package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
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
