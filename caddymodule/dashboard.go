package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
)

func init() {
	caddy.RegisterModule(Dashboard{})
	httpcaddyfile.RegisterHandlerDirective("webhook_dashboard", parseDashboard)
	httpcaddyfile.RegisterDirectiveOrder("webhook_dashboard", httpcaddyfile.Before, "respond")
}

// Dashboard is the `webhook_dashboard` handler: an HTML page of endpoints (state, counts,
// last attempt; Test, Retry dead, Enable, Resend latest), inbound counters per route, the
// request log, dead letters (Retry) and recent deliveries with their attempts. The page
// refreshes itself every 5 seconds and works on a phone.
//
// Under the page's path, `api/…` serves the admin API's routes (the same JSON), so the
// dashboard works wherever it is mounted without exposing Caddy's admin endpoint. Protect
// it like any private page, with Caddy's basic_auth (or forward_auth) in the same block.
// Actions are POSTs that must carry the X-Hookgate-Dashboard header, which a cross-site
// form cannot send, so a logged-in browser cannot be tricked into them.
//
// It answers only requests whose Host is a loopback name or address (localhost,
// 127.0.0.0/8, ::1) or one of AllowedHosts: a site that accepts any Host would otherwise
// serve a page on attacker.example that DNS-rebinds its own name to 127.0.0.1 (reads and
// actions). Other hosts get 403. It is a terminal handler.
type Dashboard struct {
	// AllowedHosts are the host names (without port, case-insensitive) the dashboard is
	// served under besides loopback ones, as Caddy's admin `origins`. Default: none
	// (loopback only).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`

	page *gateway.Dashboard
}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

// Provision prepares the page.
func (d *Dashboard) Provision(caddy.Context) error {
	d.page = &gateway.Dashboard{AllowedHosts: d.AllowedHosts}
	return nil
}

// Validate checks the allowed host names.
func (d *Dashboard) Validate() error { return gateway.ValidateHosts(d.AllowedHosts) }

func parseDashboard(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Dashboard)
	return d, d.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_dashboard [<matcher>] {
//		allowed_hosts <host>...
//	}
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(disp.Nesting()) {
		switch disp.Val() {
		case "allowed_hosts":
			hosts := disp.RemainingArgs()
			if len(hosts) == 0 {
				return disp.ArgErr()
			}
			d.AllowedHosts = append(d.AllowedHosts, hosts...)
		default:
			return disp.Errf("unknown webhook_dashboard option %q (known: allowed_hosts)", disp.Val())
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	d.page.ServeHTTP(w, r)
	return nil
}

var (
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddy.Validator             = (*Dashboard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
