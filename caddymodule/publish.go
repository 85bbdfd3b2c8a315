package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/internal/crosssite"
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

	pub *gateway.Publisher
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
	g, err := crosssite.New(p.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("webhook_publish: %w", err)
	}
	a, err := ctx.App("webhooks")
	if err != nil {
		return err
	}
	p.pub = &gateway.Publisher{Gateway: a.(*App).Gateway(), MaxBody: p.MaxBody, Guard: g, Logger: ctx.Logger()}
	return nil
}

// Validate checks the handler's config.
func (p *Publish) Validate() error {
	if p.MaxBody < 0 {
		return fmt.Errorf("webhook_publish: max_body must be positive")
	}
	_, err := crosssite.New(p.AllowedOrigins)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (p *Publish) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	p.pub.ServeHTTP(w, r)
	return nil
}

var (
	_ caddy.Provisioner           = (*Publish)(nil)
	_ caddy.Validator             = (*Publish)(nil)
	_ caddyhttp.MiddlewareHandler = (*Publish)(nil)
)
