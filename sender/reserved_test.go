package sender

import (
	"net/http"
	"strings"
	"testing"
)

// The registry refuses configured endpoints under the names Hookgate keeps for its own
// (subscriptions, async routes' targets, feeds), whatever config path made them.
func TestRegistryRefusesReservedNames(t *testing.T) {
	reg := NewRegistry()
	for _, name := range []string{"sub_x", "inbound-totvs-1234", "feed.contatos", "SUB_x", "Inbound-a", "FEED.f1"} {
		err := reg.Add(&Endpoint{Name: name, URL: "https://example.com/"})
		if err == nil || !strings.Contains(err.Error(), "kept for") {
			t.Errorf("endpoint %q: got %v, want a refusal", name, err)
		}
	}
	if err := reg.Add(&Endpoint{Name: "sub_x", URL: "https://example.com/", Subscription: true}); err != nil {
		t.Errorf("a subscription's endpoint: %v", err)
	}
	if err := reg.Add(&Endpoint{Name: "inbound-x-1", URL: "https://example.com/", Inbound: true}); err != nil {
		t.Errorf("an async route's target: %v", err)
	}
	if err := reg.Add(&Endpoint{Name: "crm", URL: "https://example.com/", Concurrency: 2000}); err == nil {
		t.Error("concurrency 2000 was accepted")
	}
	for _, h := range []http.Header{{"X": {"a\r\nb"}}, {"Bad Name": {"v"}}, {"X": {"a\x00"}}} {
		if err := reg.Add(&Endpoint{Name: "hdr", URL: "https://example.com/", Header: h}); err == nil {
			t.Errorf("header %q was accepted", h)
		}
	}
	if got := len(reg.Names()); got != 2 {
		t.Errorf("%d endpoints registered, want 2", got)
	}
}
