package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/receiver"
)

func init() {
	caddy.RegisterModule(FeedHandler{})
	httpcaddyfile.RegisterHandlerDirective("webhook_feed", parseFeedHandler)
	httpcaddyfile.RegisterDirectiveOrder("webhook_feed", httpcaddyfile.Before, "respond")
}

// FeedConfig is a feed of the `webhooks` app: records internal apps publish (event type
// feed.<name> on webhook_publish) and a caller pulls in pages from a webhook_feed route
// (Rubeus' Serviços).
type FeedConfig struct {
	// Name names the feed. Required.
	Name string `json:"name"`
	// Schema is the embedded schema name or JSON Schema file every published record must
	// pass (a schema of an array of records, such as rubeus_servicos_contato, checks each
	// record as a one-record array). Required.
	Schema string `json:"schema"`
	// PageSize is the most records one call gets. Default and maximum 1000.
	PageSize int `json:"page_size,omitempty"`
	// Retention is how long served records stay readable and requeueable. Default 72h.
	Retention caddy.Duration `json:"retention,omitempty"`
}

// FeedHandler is the `webhook_feed` handler: the URL a caller (Rubeus' Serviços) pulls a
// feed's records from. GET or POST answers 200 with a JSON array of at most the feed's
// page size of pending records, oldest first, byte for byte as published ([] when none is
// pending); a record counts as served only once the whole answer was written. Wrong or
// missing credentials get 401 as on webhook_receive. It is a terminal handler.
type FeedHandler struct {
	// Feed names the feed of the `webhooks` app to serve. Required.
	Feed string `json:"feed"`
	// Auth lists the credential lines (as webhook_receive's, without hmac: a caller that
	// pulls sends no body to sign); a request passes if one matches. At least one is
	// required ("none" to opt out explicitly).
	Auth []AuthConfig `json:"auth,omitempty"`

	srv *gateway.FeedServer
}

// CaddyModule returns the Caddy module information.
func (FeedHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_feed",
		New: func() caddy.Module { return new(FeedHandler) },
	}
}

// Provision finds the feed and resolves the credentials.
func (h *FeedHandler) Provision(ctx caddy.Context) error {
	logger := ctx.Logger()
	specs, err := authSpecs(h.Auth, logger)
	if err != nil {
		return err
	}
	creds, err := receiver.NewCredentials(specs)
	if err != nil {
		return err
	}
	appIface, err := ctx.App("webhooks")
	if err != nil {
		return fmt.Errorf("loading the webhooks app: %v", err)
	}
	h.srv, err = appIface.(*App).Gateway().NewFeedServer(h.Feed, creds, logger)
	return err
}

// Validate checks the handler's config.
func (h *FeedHandler) Validate() error {
	if h.Feed == "" {
		return fmt.Errorf("webhook_feed: name the feed to serve")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (h *FeedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.srv.ServeHTTP(w, r)
	return nil
}

func parseFeedHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	f := new(FeedHandler)
	return f, f.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_feed [<matcher>] <feed> {
//		validation_key <key>
//		auth header|bearer|basic|query|none …
//	}
func (h *FeedHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&h.Feed) || d.NextArg() {
		return d.Errf("webhook_feed takes one argument: the feed's name")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		ok, err := parseCredential(d, &h.Auth)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("unrecognized webhook_feed option %q (known: auth, validation_key)", d.Val())
		}
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*FeedHandler)(nil)
	_ caddy.Validator             = (*FeedHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*FeedHandler)(nil)
	_ caddyfile.Unmarshaler       = (*FeedHandler)(nil)
)
