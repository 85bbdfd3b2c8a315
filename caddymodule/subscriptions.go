package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/sender/subscription"
)

func init() {
	caddy.RegisterModule(SubscriptionsHandler{})
	httpcaddyfile.RegisterHandlerDirective("webhook_subscriptions", parseSubscriptionsHandler)
	httpcaddyfile.RegisterDirectiveOrder("webhook_subscriptions", httpcaddyfile.Before, "respond")
}

// DefaultSubscriptionsPrefix is where the subscriptions API is served.
const DefaultSubscriptionsPrefix = "/webhooks/subscriptions"

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

	app   *App
	guard *crosssite.Guard
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
	h.guard = g
	a, err := ctx.App("webhooks")
	if err != nil {
		return err
	}
	h.app = a.(*App)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *SubscriptionsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.app.subscriptionsAPI(h.Prefix, h.guard).ServeHTTP(w, r)
	return nil
}

// subscriptionsAPI is the API under prefix; guard refuses cross-site writes (nil: only
// this host's pages and non-browser clients).
func (a *App) subscriptionsAPI(prefix string, guard *crosssite.Guard) *subscription.API {
	return &subscription.API{Manager: a.subs, Sender: a.sender, Prefix: prefix, Guard: guard}
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
	_ caddyhttp.MiddlewareHandler = (*SubscriptionsHandler)(nil)
	_ caddyfile.Unmarshaler       = (*SubscriptionsHandler)(nil)
)
