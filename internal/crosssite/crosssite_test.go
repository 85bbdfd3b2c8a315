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
		{"same origin", "POST", "{}", []string{"Content-Type", "application/json", "Origin", "http://api.example.com", "Sec-Fetch-Site", "same-origin"}, 0},
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
