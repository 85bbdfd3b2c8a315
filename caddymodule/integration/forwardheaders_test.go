package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// spoofHeaders are what a sender can put in a webhook to pass for someone else: client
// address and host headers, a hop-by-hop header named in Connection, and the headers
// Hookgate gives the backend about the webhook.
var spoofHeaders = []string{"X-Forwarded-For", "9.9.9.9", "X-Forwarded-Host", "evil.example",
	"X-Forwarded-Proto", "https", "Forwarded", "for=9.9.9.9", "X-Real-Ip", "9.9.9.9",
	"Connection", "X-Hop", "X-Hop", "1",
	"X-Webhook-Verified", "false", "X-Webhook-Source", "stripe", "X-Webhook-Event-Id", "forged-id"}

// Outside review, stop 39: async delivery passed the sender's X-Forwarded-*, Forwarded,
// X-Real-Ip and the headers its Connection header names straight to deliver_to, where
// reverse_proxy (sync) sets the forwarding headers itself and drops hop-by-hop ones; and a
// sync route passed the sender's X-Webhook-Verified, -Source and -Event-Id to the backend.
func TestSendersCannotSpoofForwardingHeaders(t *testing.T) {
	be := startBackend(t)
	cfg := outboundConfig("store embedded", be.URL, "")
	cfg = strings.Replace(cfg, "\thandle /ploomes {", `	handle /ploomes-sync {
		webhook_receive ploomes {
			name ploomes-sync
			validation_key {env.PLOOMES_KEY}
		}
		reverse_proxy `+be.URL+`
	}
	handle /ploomes {`, 1)
	c := startCaddy(t, cfg, outboundEnv...)
	ev := sample(t, "ploomes/contact-update.json")
	host := strings.TrimPrefix(c.Base(), "http://")

	hdr := append([]string{"X-Ploomes-Validation-Key", "pl-123"}, spoofHeaders...)
	if code, _, rb := send(t, c.Base()+"/ploomes", ev, hdr...); code != 202 {
		t.Fatalf("async: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/inbound")) == 1 }, "the async delivery")
	async := byPath(be.Got(), "/inbound")[0].Header
	if code, _, rb := send(t, c.Base()+"/ploomes-sync", []byte(strings.Replace(string(ev), `"Id"`, `"Id2"`, 1)), hdr...); code != 200 {
		t.Fatalf("sync: %d %s", code, rb)
	}
	sync := byPath(be.Got(), "/ploomes-sync")[0].Header

	for name, h := range map[string]map[string][]string{"async": async, "sync": sync} {
		want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": host, "X-Forwarded-Proto": "http",
			"X-Hop": "", "Connection": ""}
		if name == "async" { // reverse_proxy leaves these two to header_up
			want["Forwarded"], want["X-Real-Ip"] = "", ""
		}
		for k, v := range want {
			if got := strings.Join(h[k], ","); got != v {
				t.Errorf("%s delivery: %s = %q, want %q", name, k, got, v)
			}
		}
	}
	if v, s := async["X-Webhook-Verified"], async["X-Webhook-Source"]; len(v) != 1 || v[0] != "true" || len(s) != 1 || s[0] != "ploomes" {
		t.Errorf("async delivery: X-Webhook-Verified %v, X-Webhook-Source %v", v, s)
	}
	for _, k := range []string{"X-Webhook-Verified", "X-Webhook-Source", "X-Webhook-Event-Id"} {
		if v := sync[k]; v != nil {
			t.Errorf("sync: the sender's %s reached the backend: %v", k, v)
		}
	}
}
