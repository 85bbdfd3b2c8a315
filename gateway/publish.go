package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// Publisher is the publish protocol (webhook_publish): internal apps POST an event and it
// is queued for every endpoint whose event patterns match its type, answering 202
// {"id", "endpoints"} once it is durable.
//
// The type comes from the Webhook-Event-Type header or the ?type= query parameter; a
// type feed.<name> publishes records to that feed. An Idempotency-Key makes a repeated
// publish a no-op that answers the same id (Idempotent-Replayed: true); the same key with
// another body is a 422. Bad input is refused as on the inbound side: 405, 415, 413, 400;
// 503 with Retry-After when the store is away.
type Publisher struct {
	// Gateway is the gateway published to. Required.
	Gateway *Gateway
	// MaxBody is the largest body accepted, in bytes. Default receiver.DefaultMaxBody.
	MaxBody int64
	// Guard refuses publishes a browser sends from another site. Required.
	Guard *crosssite.Guard
	// Logger logs store failures. Default: none.
	Logger *zap.Logger
}

func (p *Publisher) logger() *zap.Logger {
	if p.Logger == nil {
		return zap.NewNop()
	}
	return p.Logger
}

// feedPrefix starts the event types that publish to a feed.
const feedPrefix = "feed."

// ServeHTTP answers one publish.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A forged publish from a page on another site would reach every subscriber.
	if p.Guard.Check(w, r) {
		return
	}
	body, prob := receiver.ReadJSONBody(r, p.MaxBody)
	if prob != nil {
		prob.Write(w)
		return
	}
	typ := r.Header.Get("Webhook-Event-Type")
	if typ == "" {
		typ = r.URL.Query().Get("type")
	}
	if typ == "" {
		problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request",
			"name the event type in the Webhook-Event-Type header or the ?type= query parameter").Write(w)
		return
	}
	if len(typ) >= len(feedPrefix) && strings.EqualFold(typ[:len(feedPrefix)], feedPrefix) {
		// The feed. types are the feeds': one that names no feed is a mistake (a typo, a
		// feed not configured here, a case twin FEED.x), never an ordinary event for the
		// other endpoints.
		f, ok := p.Gateway.Feed(typ[len(feedPrefix):])
		if !ok || typ[:len(feedPrefix)] != feedPrefix {
			problem.New(http.StatusUnprocessableEntity, problem.ReasonUnknownFeed, "Unprocessable Content",
				fmt.Sprintf("event type %q names no feed of this configuration (feed.<name> publishes to a feed of the webhooks app)", typ)).Write(w)
			return
		}
		p.publishFeed(w, r, f, body)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	res, err := p.Gateway.Sender().Publish(ctx, sender.Message{Type: typ, IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body, Header: r.Header})
	cancel()
	switch {
	case errors.Is(err, sender.ErrBadType), errors.Is(err, sender.ErrKeyTooLong):
		problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request", err.Error()).Write(w)
		return
	case errors.Is(err, queue.ErrConflict):
		problem.New(http.StatusUnprocessableEntity, problem.ReasonConflict, "Unprocessable Content",
			"this Idempotency-Key was already used with a different body").Write(w)
		return
	case errors.Is(err, queue.ErrNotReplicated):
		p.logger().Error("a published event reached too few replicas", zap.String("type", typ), zap.Error(err))
		problem.New(http.StatusServiceUnavailable, problem.ReasonNotReplicated, "Service Unavailable",
			"the event was queued but fewer replicas than replicas_ack asks for hold it yet; retry with the same Idempotency-Key, or it is queued twice").
			WithHeader("Retry-After", "30").Write(w)
		return
	case err != nil:
		p.logger().Error("cannot queue a published event", zap.String("type", typ), zap.Error(err))
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the event could not be stored; nothing was queued; retry later").WithHeader("Retry-After", "30").Write(w)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeAccepted(w, struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}{res.ID, res.Endpoints})
}

// writeAccepted answers 202 with v as JSON.
func writeAccepted(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
}
