package caddymodule

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
)

func init() {
	caddy.RegisterModule(Dashboard{})
	httpcaddyfile.RegisterHandlerDirective("webhook_dashboard", parseDashboard)
	httpcaddyfile.RegisterDirectiveOrder("webhook_dashboard", httpcaddyfile.Before, "respond")
}

//go:embed dashboard/index.html dashboard/app.js dashboard/style.css
var dashboardFiles embed.FS

// dashboardPage is the page with its style and script inlined (one request, no CDN, no
// build step), and the Content-Security-Policy that allows exactly those two by hash.
var dashboardPage, dashboardCSP = func() ([]byte, string) {
	read := func(name string) string {
		b, err := dashboardFiles.ReadFile("dashboard/" + name)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	style, script := read("style.css"), read("app.js")
	page := strings.NewReplacer("{{STYLE}}", style, "{{SCRIPT}}", script, "{{OUTCOMES}}", outcomeOptions()).Replace(read("index.html"))
	hash := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}
	csp := "default-src 'none'; connect-src 'self'; img-src 'self'; script-src " + hash(script) +
		"; style-src " + hash(style) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return []byte(page), csp
}()

// outcomeOptions are the request log's outcome filter: every outcome the core ends a
// webhook with (problem.InboundReasons, the one list the metrics use too), and
// "refused" for every 4xx/5xx.
func outcomeOptions() string {
	var b strings.Builder
	b.WriteString(`<option value="">all outcomes</option><option value="refused">refused (4xx/5xx)</option>`)
	for _, r := range problem.InboundReasons {
		v := html.EscapeString(string(r))
		b.WriteString(`<option value="` + v + `">` + v + `</option>`)
	}
	return b.String()
}

// Dashboard is the `webhook_dashboard` handler: an HTML page of endpoints (state, counts,
// last attempt; Test, Retry dead, Enable, Resend latest), inbound counters per route, dead
// letters (Retry) and recent deliveries with their attempts. The page refreshes itself
// every 5 seconds and works on a phone.
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
}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

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
			for _, h := range hosts {
				if strings.ContainsAny(h, ":/*") {
					return disp.Errf("allowed_hosts: %q: give a host name without scheme, port or wildcard", h)
				}
			}
			d.AllowedHosts = append(d.AllowedHosts, hosts...)
		default:
			return disp.Errf("unknown webhook_dashboard option %q (known: allowed_hosts)", disp.Val())
		}
	}
	return nil
}

// hostAllowed tells whether the request's Host is a loopback name or address, or listed.
func (d *Dashboard) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	for _, a := range d.AllowedHosts {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if !d.hostAllowed(r) {
		return writeAPIError(w, caddy.APIError{HTTPStatus: http.StatusForbidden,
			Message: "the dashboard is served only under a loopback host or one of its allowed_hosts"})
	}
	if i := strings.LastIndex(r.URL.Path, "/api/"); i >= 0 {
		return d.api(w, r, r.URL.Path[i+len("/api/"):])
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("the dashboard page is read with GET"))
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Length", strconv.Itoa(len(dashboardPage)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(dashboardPage)
	}
	return nil
}

// api serves one admin API route for the page.
func (d *Dashboard) api(w http.ResponseWriter, r *http.Request, rest string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Header.Get("X-Hookgate-Dashboard") != "1" || !crosssite.FromThisSite(r) {
			return writeAPIError(w, caddy.APIError{HTTPStatus: http.StatusForbidden,
				Message: "dashboard actions must come from the dashboard page (X-Hookgate-Dashboard header, same origin)"})
		}
	}
	r2 := r.Clone(r.Context())
	// The page's host (loopback or allowed_hosts), header and origin were checked above:
	// the admin routes it calls in-process must not check the browser's headers again,
	// or a dashboard under an allowed name would be refused as rebindable.
	r2.Header.Del("Origin")
	r2.Header.Del("Sec-Fetch-Site")
	r2.URL.Path = "/webhooks/" + rest
	r2.URL.RawPath = ""
	if err := (&AdminAPI{}).serve(w, r2); err != nil {
		var ae caddy.APIError
		if !errors.As(err, &ae) {
			ae = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Message: err.Error()}
		}
		return writeAPIError(w, ae)
	}
	return nil
}

func writeAPIError(w http.ResponseWriter, ae caddy.APIError) error {
	if ae.HTTPStatus == 0 {
		ae.HTTPStatus = http.StatusInternalServerError
	}
	msg := ae.Message
	if msg == "" && ae.Err != nil {
		msg = ae.Err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.HTTPStatus)
	return json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

var (
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
