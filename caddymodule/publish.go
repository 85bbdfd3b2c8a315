package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
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
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose pages may
	// publish; their CORS preflight is answered. A publish a browser sends from any other
	// site is refused with 403; publishers (server-side apps) send no Origin and pass.
	// Default: none.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	app    *App
	logger *zap.Logger
	guard  *crosssite.Guard
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
	g, err := crosssite.New(p.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("webhook_publish: %w", err)
	}
	p.guard = g
	a, err := ctx.App("webhooks")
	if err != nil {
		return err
	}
	p.app = a.(*App)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (p *Publish) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	// A forged publish from a page on another site would reach every subscriber.
	if p.guard.Check(w, r) {
		return nil
	}
	body, prob := receiver.ReadJSONBody(r, p.MaxBody)
	if prob != nil {
		prob.Write(w)
		return nil
	}
	typ := r.Header.Get("Webhook-Event-Type")
	if typ == "" {
		typ = r.URL.Query().Get("type")
	}
	if typ == "" {
		problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request",
			"name the event type in the Webhook-Event-Type header or the ?type= query parameter").Write(w)
		return nil
	}
	if len(typ) >= len("feed.") && strings.EqualFold(typ[:len("feed.")], "feed.") {
		// FEED.x too: a case twin of a feed type is a mistake, never an ordinary event.
		name := typ[len("feed."):]
		// The feed. types are the feeds': one that names no feed is a mistake (a typo,
		// a feed not configured here), never an ordinary event for the other endpoints.
		f, ok := p.app.feeds[name]
		ok = ok && typ[:len("feed.")] == "feed."
		if !ok {
			problem.New(http.StatusUnprocessableEntity, "unknown_feed", "Unprocessable Content",
				fmt.Sprintf("event type %q names no feed of this configuration (feed.<name> publishes to a feed of the webhooks app)", typ)).Write(w)
			return nil
		}
		p.publishFeed(w, r, f, body)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	res, err := p.app.Sender().Publish(ctx, sender.Message{Type: typ, IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body, Header: r.Header})
	cancel()
	switch {
	case errors.Is(err, sender.ErrBadType), errors.Is(err, sender.ErrKeyTooLong):
		problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request", err.Error()).Write(w)
		return nil
	case errors.Is(err, queue.ErrConflict):
		problem.New(http.StatusUnprocessableEntity, problem.ReasonConflict, "Unprocessable Content",
			"this Idempotency-Key was already used with a different body").Write(w)
		return nil
	case err != nil:
		p.logger.Error("cannot queue a published event", zap.String("type", typ), zap.Error(err))
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the event could not be stored; nothing was queued; retry later").WithHeader("Retry-After", "30").Write(w)
		return nil
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	b, _ := json.Marshal(struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}{res.ID, res.Endpoints})
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
