package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// strippedHeaders are the sender's headers that are not queued with an async event:
// hop-by-hop and framing headers, credentials (never stored), and the Standard Webhooks
// headers that the delivery sets itself.
func strippedHeaders(auth []receiver.AuthSpec) map[string]bool {
	m := map[string]bool{}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Authorization", "Cookie",
		"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Expect"} {
		m[k] = true
	}
	for _, a := range auth {
		switch a.Kind {
		case receiver.AuthValidationKey:
			m[receiver.ValidationKeyHeader] = true
		case receiver.AuthHeader:
			m[http.CanonicalHeaderKey(a.Name)] = true
		}
	}
	return m
}

// enqueue is async mode's hand-off: the event goes into the queue (durably) and the sender
// gets 202. Each accepted request is a new queued event: dedupe has already decided that
// it must be handed on.
func (h *Receive) enqueue(w http.ResponseWriter, r *http.Request, ev *receiver.Event) error {
	hdr := http.Header{}
	for k, vs := range r.Header {
		if !h.strip[k] {
			hdr[k] = vs
		}
	}
	hdr.Set("X-Webhook-Source", ev.Source)
	hdr.Set("X-Webhook-Verified", strconv.FormatBool(ev.Verified))
	if ev.ID != "" {
		hdr.Set("X-Webhook-Event-Id", ev.ID)
	}
	qev := queue.Event{ID: queue.NewEventID(), Type: ev.Source, Body: ev.Body, Header: hdr, Created: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	_, err := h.app.Queue().Enqueue(ctx, qev, []string{h.target})
	cancel()
	if err != nil {
		h.logger.Error("cannot queue an accepted webhook", zap.String("event_id", ev.ID), zap.Error(err))
		status, reason := http.StatusServiceUnavailable, receiver.ReasonStoreUnavailable
		if !errors.Is(err, queue.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusInternalServerError
		}
		receiver.NewProblem(status, reason, http.StatusText(status),
			"the event could not be queued; retry later").WithHeader("Retry-After", "30").Write(w)
		return nil
	}
	h.app.notify(h.target)
	id := ev.ID
	if id == "" {
		id = qev.ID
	}
	b, _ := json.Marshal(map[string]string{"id": id})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	return nil
}
