package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/order"
	"go.uber.org/zap"
)

// orderAnswer is a record's newest order value in GET /webhooks/inbound/<route>/order.
type orderAnswer struct {
	Route string `json:"route"`
	receiver.OrderState
}

// clearAnswer is what DELETE /webhooks/inbound/<route>/order did.
type clearAnswer struct {
	Route   string `json:"route"`
	Key     string `json:"record_key"`
	Cleared bool   `json:"cleared"`
}

// inboundOrder serves GET and DELETE /webhooks/inbound/<route>/order?key=<record key>: a
// record's newest value of the stale-event guard, and its reset. It is reached through
// Caddy's admin endpoint (its Host and Origin checks) or the dashboard's api/ (its
// X-Hookgate-Dashboard header and same-origin check on anything but GET).
func (a *AdminAPI) inboundOrder(w http.ResponseWriter, r *http.Request, app *App, route string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "GET, DELETE")
		return apiErr(http.StatusMethodNotAllowed, "%s %s: use GET or DELETE", r.Method, r.URL.Path)
	}
	if app == nil {
		return apiErr(http.StatusNotFound, "no webhooks app is running")
	}
	h, ok := app.receivers[route]
	if !ok {
		return apiErr(http.StatusNotFound, "no webhook_receive route %q", route)
	}
	keys := r.URL.Query()["key"]
	if len(keys) != 1 {
		return apiErr(http.StatusBadRequest, "give the record key once: ?key=<record key> (the order_key of a request in the request log)")
	}
	key := keys[0]
	if r.Method == http.MethodGet {
		st, err := h.rc.OrderRecord(r.Context(), key)
		if err != nil {
			return orderErr(route, err)
		}
		return writeJSON(w, orderAnswer{Route: route, OrderState: st})
	}
	found, err := h.rc.ClearOrder(r.Context(), key)
	if err != nil {
		return orderErr(route, err)
	}
	h.logger.Info("order value cleared by the admin API", zap.String("route", route), zap.String("record_key", key),
		zap.Bool("was_recorded", found))
	return writeJSON(w, clearAnswer{Route: route, Key: key, Cleared: found})
}

// orderErr is the admin answer to an error of the guard's operator calls.
func orderErr(route string, err error) error {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, receiver.ErrNoOrderGuard):
		return apiErr(http.StatusNotFound, "route %q has no stale-event guard (order_by)", route)
	case errors.Is(err, receiver.ErrRecordKey):
		status = http.StatusBadRequest
	case errors.Is(err, order.ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}
