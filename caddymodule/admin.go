package caddymodule

import (
	"net"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the `admin.api.webhooks` module: the gateway's admin routes under
// /webhooks/ on Caddy's admin endpoint (endpoints, deliveries, feeds, inbound counters,
// the request log and replay, the store, subscriptions). It serves the running gateway,
// found at request time, so it works whether or not the app is configured.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.webhooks",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/webhooks/", Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		gateway.Admin{}.ServeHTTP(w, r) // answers its own problem+json refusals
		return nil
	})}}
}

// serverByPort finds the running HTTP server that listens on the port of host (a
// request's Host), when exactly one does; else the only server, if there is one. Replays
// of requests this instance did not receive since its last reload go through it.
func serverByPort(host string, isTLS bool) http.Handler {
	port := "80"
	if isTLS {
		port = "443"
	}
	if _, p, err := net.SplitHostPort(host); err == nil {
		port = p
	}
	appIface, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil
	}
	app, ok := appIface.(*caddyhttp.App)
	if !ok {
		return nil
	}
	n, _ := strconv.Atoi(port)
	var found, only *caddyhttp.Server
	for _, srv := range app.Servers {
		only = srv
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				continue
			}
			if p := uint(n); na.StartPort <= p && p <= na.EndPort {
				if found != nil && found != srv {
					return nil
				}
				found = srv
			}
		}
	}
	if found == nil && len(app.Servers) == 1 {
		found = only
	}
	if found == nil {
		return nil // not a typed nil in the interface
	}
	return found
}

var _ caddy.AdminRouter = (*AdminAPI)(nil)
