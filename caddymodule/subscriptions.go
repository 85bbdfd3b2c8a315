package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/internal/crosssite"
)

func init() {
	caddy.RegisterModule(SubscriptionsHandler{})
	httpcaddyfile.RegisterHandlerDirective("webhook_subscriptions", parseSubscriptionsHandler)
	httpcaddyfile.RegisterDirectiveOrder("webhook_subscriptions", httpcaddyfile.Before, "respond")
}

// DefaultSubscriptionsPrefix is where the subscriptions API is served.
const DefaultSubscriptionsPrefix = gateway.SubscriptionsPrefix

// SubscriptionsHandler is the `webhook_subscriptions` handler: the subscriptions API
// (the same routes as on the admin endpoint) on a site, so it can sit behind Caddy's own
// basic_auth, forward_auth or mTLS. It is terminal: it never calls the next handler.
type SubscriptionsHandler struct {
	// Prefix is the path the collection is served at; requests elsewhere get a 404.
	// Default "/webhooks/subscriptions".
	Prefix string `json:"prefix,omitempty"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose pages may change
	// subscriptions besides pages of this host; their CORS preflight is answered. Writes
	// from any other site are refused with 403. Default: none.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	api http.Handler
}

// CaddyModule returns the Caddy module information.
func (SubscriptionsHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_subscriptions",
		New: func() caddy.Module { return new(SubscriptionsHandler) },
	}
}

// Provision finds the webhooks app.
func (h *SubscriptionsHandler) Provision(ctx caddy.Context) error {
	if h.Prefix == "" {
		h.Prefix = DefaultSubscriptionsPrefix
	}
	if !strings.HasPrefix(h.Prefix, "/") {
		h.Prefix = "/" + h.Prefix
	}
	g, err := crosssite.New(h.AllowedOrigins)
	if err != nil {
		return fmt.Errorf("webhook_subscriptions: %w", err)
	}
	a, err := ctx.App("webhooks")
	if err != nil {
		return err
	}
	h.api = a.(*App).Gateway().SubscriptionsAPI(h.Prefix, g)
	return nil
}

// Validate checks the handler's config.
func (h *SubscriptionsHandler) Validate() error {
	_, err := crosssite.New(h.AllowedOrigins)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *SubscriptionsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.api.ServeHTTP(w, r)
	return nil
}

func parseSubscriptionsHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(SubscriptionsHandler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile sets up the handler. Syntax (a path right after the directive is a
// matcher, as for every handler, hence the block):
//
//	webhook_subscriptions [<matcher>] {
//		prefix <path>
//		allowed_origins <origin>...
//	}
func (h *SubscriptionsHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for n := d.Nesting(); d.NextBlock(n); {
		switch d.Val() {
		case "prefix":
			if !d.Args(&h.Prefix) || d.NextArg() {
				return d.ArgErr()
			}
		case "allowed_origins":
			origins, err := originsArg(d)
			if err != nil {
				return err
			}
			h.AllowedOrigins = append(h.AllowedOrigins, origins...)
		default:
			return d.Errf("unrecognized webhook_subscriptions option %q (prefix, allowed_origins)", d.Val())
		}
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*SubscriptionsHandler)(nil)
	_ caddy.Validator             = (*SubscriptionsHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*SubscriptionsHandler)(nil)
	_ caddyfile.Unmarshaler       = (*SubscriptionsHandler)(nil)
)
