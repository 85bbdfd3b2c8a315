// Package crosssite is the one check every state-changing handler that is not a webhook
// receiver runs first (subscriptions, publish, dashboard actions): a page on another site
// must not be able to make a visitor's browser change state with the visitor's ambient
// access (an IP allow-list, a VPN, mTLS, cookies, cached Basic credentials).
//
// A write is refused when the browser says it comes from elsewhere (an Origin that is not
// this host, Origin "null", or Sec-Fetch-Site other than same-origin / none), unless its
// Origin is one the operator allowed; and a write that carries a body must say it is JSON,
// since a page can send text/plain and form bodies to any site without asking (no CORS
// preflight). Server-side clients send no Origin and no Sec-Fetch-Site and pass.
package crosssite

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/hookgate/hookgate/problem"
)

// Guard holds the origins allowed besides the host itself. The zero value (and a nil
// *Guard) allows none.
type Guard struct {
	origins map[string]bool // "scheme://host[:port]", lower case, default port removed
}

// New returns a guard that also admits writes from the given origins, each written as
// scheme://host[:port] (http or https; no path, query or wildcard), as a browser sends
// them in Origin.
func New(allowed []string) (*Guard, error) {
	g := &Guard{origins: make(map[string]bool, len(allowed))}
	for _, o := range allowed {
		n, err := normalize(o)
		if err != nil {
			return nil, fmt.Errorf("allowed_origins: %w", err)
		}
		g.origins[n] = true
	}
	return g, nil
}

// normalize checks an origin and returns its canonical form.
func normalize(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(u.Host, "*") {
		return "", fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com", o)
	}
	return strings.ToLower(u.Scheme) + "://" + hostKey(u.Scheme, u.Host), nil
}

// hostKey is host[:port] in lower case, without the scheme's default port.
func hostKey(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case strings.EqualFold(scheme, "http"):
		host = strings.TrimSuffix(host, ":80")
	case strings.EqualFold(scheme, "https"):
		host = strings.TrimSuffix(host, ":443")
	}
	return host
}

// allowedOrigin tells whether origin (as sent in the Origin header) is listed.
func (g *Guard) allowedOrigin(origin string) bool {
	if g == nil || len(g.origins) == 0 || origin == "" || origin == "null" {
		return false
	}
	n, err := normalize(origin)
	return err == nil && g.origins[n]
}

// FromThisSite reports whether a browser would have sent r from a page of the host it is
// addressed to, or whether r comes from no browser at all: no Origin (or one naming r's
// Host) and no Sec-Fetch-Site other than same-origin or none.
func FromThisSite(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // "null" and anything unparsable
	}
	return hostKey(u.Scheme, u.Host) == hostKey(u.Scheme, r.Host)
}

// Rebindable reports whether a browser sent r (it says so: an Origin, or a Sec-Fetch-Site
// other than "none") under a host name that a page on another site could have pointed at
// this server (DNS rebinding): to the browser that page is then same-origin, Host and
// Origin both naming it. Only IP addresses and localhost (which browsers resolve
// themselves) cannot be rebound.
func Rebindable(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); r.Header.Get("Origin") == "" && (s == "" || s == "none") {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	host = strings.ToLower(host)
	return host != "localhost" && !strings.HasSuffix(host, ".localhost")
}

// safe methods change no state.
func safe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Check runs the guard on r before a handler serves it. It answers (and returns true) a
// write from another site (403 cross_site_request), a write whose body is not declared
// JSON (415 unsupported_media_type), and the CORS preflight of an allowed origin (204).
// For an allowed origin it also sets the CORS headers the browser needs to send the write
// and read its answer. Otherwise it writes nothing and returns false. A nil guard
// allows no other origin.
func (g *Guard) Check(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	allowed := g.allowedOrigin(origin)
	if allowed {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Idempotency-Key, Webhook-Event-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return true
		}
	}
	if safe(r.Method) {
		return false
	}
	if !allowed && (!FromThisSite(r) || Rebindable(r)) {
		detail := "a browser sent this request from another site"
		switch {
		case FromThisSite(r):
			detail = fmt.Sprintf("a browser sent this request from a page under the name %.200q, which any site can point at this server (DNS rebinding); list that origin in allowed_origins", r.Host)
		case origin != "":
			detail = fmt.Sprintf("a browser sent this request from the origin %.200q, which is not this host", origin)
		}
		problem.New(http.StatusForbidden, problem.ReasonCrossSite, "Forbidden",
			detail+"; requests that change state must come from this host, from a server (no Origin), or from an origin listed in allowed_origins").Write(w)
		return true
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || r.ContentLength != 0 {
		if !isJSON(ct) {
			what := fmt.Sprintf("the Content-Type is %.100q", ct)
			if ct == "" {
				what = "the request has a body and no Content-Type"
			}
			problem.New(http.StatusUnsupportedMediaType, problem.ReasonMediaType, "Unsupported Media Type",
				what+"; a request that changes state with a body must send application/json (pages on other sites can send text/plain and forms without asking)").
				WithHeader("Accept-Post", "application/json").Write(w)
			return true
		}
	}
	return false
}

// isJSON accepts application/json and application/*+json.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
}
