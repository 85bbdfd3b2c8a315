package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Publish{})
}

// Publish is the `webhook_publish` handler: internal apps POST an event here and it is
// queued for every endpoint whose event patterns match its type. It answers 202
// {"id": "<event id>", "endpoints": n} only once the event is durable in the store.
//
// The event type comes from the Webhook-Event-Type header or the ?type= query parameter.
// An Idempotency-Key header makes a repeated publish a no-op that answers the same id
// (with Idempotent-Replayed: true); the same key with another body is refused with 422.
// Bad input is refused as on the inbound side: 405, 415, 413, 400 (with the byte offset),
// 400 for a missing or malformed type; 503 with Retry-After when the store is away.
// It is a terminal handler.
type Publish struct {
	// MaxBody is the largest event body accepted, in bytes. Default 5MB (5242880).
	MaxBody int64 `json:"max_body,omitempty"`

	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Publish) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_publish",
		New: func() caddy.Module { return new(Publish) },
	}
}

// Provision finds the webhooks app.
func (p *Publish) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	a, err := ctx.App("webhooks")
	if err != nil {
		return err
	}
	p.app = a.(*App)
	return nil
}

// validType accepts 1-200 printable, non-space characters.
func validType(t string) bool {
	if t == "" || len(t) > 200 {
		return false
	}
	for _, r := range t {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (p *Publish) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	body, prob := receiver.ReadJSONBody(r, p.MaxBody)
	if prob != nil {
		prob.Write(w)
		return nil
	}
	typ := r.Header.Get("Webhook-Event-Type")
	if typ == "" {
		typ = r.URL.Query().Get("type")
	}
	if !validType(typ) {
		detail := "name the event type in the Webhook-Event-Type header or the ?type= query parameter"
		if typ != "" {
			detail = "the event type must be 1-200 printable characters without spaces"
		}
		receiver.NewProblem(http.StatusBadRequest, receiver.ReasonMissingType, "Bad Request", detail).Write(w)
		return nil
	}
	id := queue.NewEventID()
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		if len(key) > 255 {
			receiver.NewProblem(http.StatusBadRequest, receiver.ReasonMissingType, "Bad Request",
				"the Idempotency-Key is longer than 255 characters").Write(w)
			return nil
		}
		id = queue.IdempotentEventID(key)
	}
	eps := p.app.match(typ)
	created := 0
	if len(eps) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		var err error
		created, err = p.app.Queue().Enqueue(ctx, queue.Event{ID: id, Type: typ, Body: body, Created: time.Now().UTC()}, eps)
		cancel()
		switch {
		case errors.Is(err, queue.ErrConflict):
			receiver.NewProblem(http.StatusUnprocessableEntity, receiver.ReasonConflict, "Unprocessable Content",
				"this Idempotency-Key was already used with a different body").Write(w)
			return nil
		case err != nil:
			p.logger.Error("cannot queue a published event", zap.String("type", typ), zap.Error(err))
			receiver.NewProblem(http.StatusServiceUnavailable, receiver.ReasonStoreUnavailable, "Service Unavailable",
				"the event could not be stored; nothing was queued; retry later").WithHeader("Retry-After", "30").Write(w)
			return nil
		}
		p.app.notify(eps...)
	}
	if key != "" && created == 0 && len(eps) > 0 {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	b, _ := json.Marshal(struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}{id, len(eps)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	return nil
}

var (
	_ caddy.Provisioner           = (*Publish)(nil)
	_ caddyhttp.MiddlewareHandler = (*Publish)(nil)
)
