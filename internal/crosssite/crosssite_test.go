package crosssite

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	g, err := New([]string{"https://App.example.com:443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, body string
		hdr                []string
		status             int // 0: passed on
	}{
		{"server-side JSON write", "POST", "{}", []string{"Content-Type", "application/json"}, 0},
		{"bodiless write, no type", "POST", "", nil, 0},
		{"read from anywhere", "GET", "", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 0},
		{"text/plain body", "POST", "{}", []string{"Content-Type", "text/plain"}, 415},
		{"body without a type", "POST", "{}", nil, 415},
		{"+json type", "PATCH", "{}", []string{"Content-Type", "application/merge-patch+json"}, 0},
		{"foreign origin", "POST", "{}", []string{"Content-Type", "application/json", "Origin", "https://evil.example"}, 403},
		{"null origin", "DELETE", "", []string{"Origin", "null"}, 403},
		{"cross-site, no origin", "POST", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site is another origin", "POST", "", []string{"Sec-Fetch-Site", "same-site"}, 403},
		// A page under a name is same-origin to the browser even when the name was
		// rebound to this server: only a listed origin may write from it.
		{"same origin under a name (rebindable)", "POST", "{}", []string{"Content-Type", "application/json", "Origin", "http://api.example.com", "Sec-Fetch-Site", "same-origin"}, 403},
		{"Sec-Fetch-Site same-origin under a name", "POST", "{}", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "same-origin"}, 403},
		{"allowed origin", "POST", "{}", []string{"Content-Type", "application/json", "Origin", "https://app.example.com", "Sec-Fetch-Site", "cross-site"}, 0},
		{"allowed origin still needs JSON", "POST", "{}", []string{"Content-Type", "text/plain", "Origin", "https://app.example.com"}, 415},
		{"allowed origin's preflight", "OPTIONS", "", []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"}, 204},
		{"allowed host on another scheme", "POST", "", []string{"Origin", "http://app.example.com"}, 403},
	} {
		r := httptest.NewRequest(tc.method, "http://api.example.com/x", strings.NewReader(tc.body))
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			r.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		w := httptest.NewRecorder()
		done := g.Check(w, r)
		if got := map[bool]int{true: w.Code, false: 0}[done]; got != tc.status {
			t.Errorf("%s: %d, want %d (%s)", tc.name, got, tc.status, w.Body)
		}
		if done && tc.status >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: answered %q, not problem+json", tc.name, w.Header().Get("Content-Type"))
		}
	}
	var nilGuard *Guard
	r := httptest.NewRequest("POST", "http://h/x", nil)
	r.Header.Set("Origin", "https://app.example.com")
	if !nilGuard.Check(httptest.NewRecorder(), r) {
		t.Error("a nil guard let a foreign origin write")
	}
	for _, bad := range []string{"app.example.com", "https://*.example.com", "https://a.example/path", "ftp://a.example"} {
		if _, err := New([]string{bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestRebindable(t *testing.T) {
	for _, tc := range []struct {
		host, origin, site string
		want               bool
	}{
		{"evil.example:8081", "http://evil.example:8081", "same-origin", true},
		{"evil.example:8081", "", "same-origin", true},
		{"evil.example:8081", "", "", false},     // no browser said anything: a server
		{"evil.example:8081", "", "none", false}, // typed in the address bar
		{"127.0.0.1:8081", "http://127.0.0.1:8081", "same-origin", false},
		{"[::1]:8081", "http://[::1]:8081", "same-origin", false},
		{"10.0.0.7", "http://10.0.0.7", "same-origin", false},
		{"LocalHost:8081", "http://localhost:8081", "same-origin", false},
		{"app.localhost", "http://app.localhost", "same-origin", false},
		{"localhost.evil.example", "http://localhost.evil.example", "same-origin", true},
	} {
		r := httptest.NewRequest("POST", "http://"+tc.host+"/", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if got := Rebindable(r); got != tc.want {
			t.Errorf("Host %q Origin %q Sec-Fetch-Site %q: %v, want %v", tc.host, tc.origin, tc.site, got, tc.want)
		}
	}
}
