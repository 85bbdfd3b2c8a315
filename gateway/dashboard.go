package gateway

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
)

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

// Dashboard is the HTML dashboard: endpoints (state, counts, last attempt; Test, Retry
// dead, Enable, Resend latest), inbound counters per route, the request log, dead letters
// (Retry) and recent deliveries with their attempts. Under the page's path, `api/…`
// serves the admin API's routes (the same JSON), so it works wherever it is mounted
// without exposing Caddy's admin endpoint. Actions are POSTs that must carry the
// X-Hookgate-Dashboard header, which a cross-site form cannot send.
//
// It answers only requests whose Host is a loopback name or address (localhost,
// 127.0.0.0/8, ::1) or one of AllowedHosts: a site that accepts any Host would otherwise
// serve a page on attacker.example that DNS-rebinds its own name to 127.0.0.1.
type Dashboard struct {
	// AllowedHosts are the host names (without port, case-insensitive) the dashboard is
	// served under besides loopback ones. Default: none (loopback only).
	AllowedHosts []string
}

// ValidateHosts checks allowed host names: no scheme, port or wildcard.
func ValidateHosts(hosts []string) error {
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, ":/*") {
			return fmt.Errorf("allowed_hosts: %q: give a host name without scheme, port or wildcard", h)
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

// ServeHTTP serves the page, or an admin route under api/.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if !d.hostAllowed(r) {
		problem.New(http.StatusForbidden, problem.ReasonForbidden, "Forbidden",
			"the dashboard is served only under a loopback host or one of its allowed_hosts").Write(w)
		return
	}
	if i := strings.LastIndex(r.URL.Path, "/api/"); i >= 0 {
		d.api(w, r, r.URL.Path[i+len("/api/"):])
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		problem.New(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
			"the dashboard page is read with GET").WithHeader("Allow", "GET, HEAD").Write(w)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Length", strconv.Itoa(len(dashboardPage)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(dashboardPage)
	}
}

// api serves one admin API route for the page.
func (d *Dashboard) api(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if r.Header.Get("X-Hookgate-Dashboard") != "1" || !crosssite.FromThisSite(r) {
			problem.New(http.StatusForbidden, problem.ReasonCrossSite, "Forbidden",
				"dashboard actions must come from the dashboard page (X-Hookgate-Dashboard header, same origin)").Write(w)
			return
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
	Admin{}.ServeHTTP(w, r2)
}
