package integration

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/signature"
)

const hmacCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /standard {
		webhook_receive standard {
			auth hmac standard {env.STD_OLD} {env.STD_NEW}
		}
		reverse_proxy {BACKEND}
	}
	handle /github {
		webhook_receive github {
			auth hmac github {env.GH_SECRET}
		}
		reverse_proxy {BACKEND}
	}
	handle /stripe {
		webhook_receive stripe {
			auth hmac stripe {env.STRIPE_SECRET} {
				tolerance 2m
			}
		}
		reverse_proxy {BACKEND}
	}
	handle /shopify {
		webhook_receive shopify {
			auth hmac shopify {env.SHOPIFY_SECRET}
			dedupe off
		}
		reverse_proxy {BACKEND}
	}
	handle /slack {
		webhook_receive slack {
			auth hmac slack {env.SLACK_SECRET}
			event_id body_sha256
		}
		reverse_proxy {BACKEND}
	}
	handle /generic {
		webhook_receive {
			name generic
			auth hmac generic {env.GEN_SECRET} {
				header X-Signature
				algorithm sha512
			}
			event_id header:X-Request-Id
		}
		reverse_proxy {BACKEND}
	}
}
`

func TestHMACSchemesThroughRealCaddy(t *testing.T) {
	stdOld := "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-old-key"))
	stdNew := "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-new-key"))
	env := []string{"STD_OLD=" + stdOld, "STD_NEW=" + stdNew, "GH_SECRET=gh-secret", "STRIPE_SECRET=whsec_stripe",
		"SHOPIFY_SECRET=shop", "SLACK_SECRET=slack", "GEN_SECRET=gen"}
	be := startBackend(t)
	c := startCaddy(t, strings.ReplaceAll(hmacCaddyfile, "{BACKEND}", be.Addr), env...)

	cases := []struct {
		path   string
		cfg    signature.Config
		extra  []string
		wrong  string
		header string
	}{
		{"/standard", signature.Config{Scheme: "standard", Secrets: []string{stdNew}}, nil, "whsec_" + base64.StdEncoding.EncodeToString([]byte("x")), "Webhook-Signature"},
		{"/standard", signature.Config{Scheme: "standard", Secrets: []string{stdOld}}, nil, "", "Webhook-Signature"},
		{"/github", signature.Config{Scheme: "github", Secrets: []string{"gh-secret"}}, []string{"X-GitHub-Delivery", "d-1"}, "gh-wrong", "X-Hub-Signature-256"},
		{"/stripe", signature.Config{Scheme: "stripe", Secrets: []string{"whsec_stripe"}}, nil, "whsec_other", "Stripe-Signature"},
		{"/shopify", signature.Config{Scheme: "shopify", Secrets: []string{"shop"}}, nil, "shop2", "X-Shopify-Hmac-Sha256"},
		{"/slack", signature.Config{Scheme: "slack", Secrets: []string{"slack"}}, nil, "slack2", "X-Slack-Signature"},
		{"/generic", signature.Config{Scheme: "generic", Secrets: []string{"gen"}, Header: "X-Signature", Algorithm: "sha512"}, []string{"X-Request-Id", "r-1"}, "gen2", "X-Signature"},
	}
	for i, tc := range cases {
		body := []byte(`{"id":"evt_` + itoa(i) + `","type":"test","n":` + itoa(i) + `}`)
		now := time.Now()
		sign := func(cfg signature.Config, ts time.Time, b []byte) []string {
			h, err := signature.Sign(cfg, signature.Message{ID: "msg_" + itoa(i), Time: ts, Body: b})
			if err != nil {
				t.Fatal(err)
			}
			out := append([]string(nil), tc.extra...)
			for k := range h {
				out = append(out, k, h.Get(k))
			}
			return out
		}
		before := be.Count()
		if code, _, rb := send(t, c.Base()+tc.path, body, sign(tc.cfg, now, body)...); code != 200 {
			t.Fatalf("%s (%d): valid signature got %d %s", tc.path, i, code, rb)
		}
		if be.Count() != before+1 {
			t.Fatalf("%s: not handed on", tc.path)
		}
		// Tampered body, wrong secret, stale timestamp, malformed header: all a plain 401.
		var bodies [][]byte
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-2] = '9'
		code, h, rb := send(t, c.Base()+tc.path, tampered, sign(tc.cfg, now, body)...)
		if code != 401 {
			t.Fatalf("%s: tampered body got %d", tc.path, code)
		}
		problem(t, h, rb)
		bodies = append(bodies, rb)
		if tc.wrong != "" {
			wrong := tc.cfg
			wrong.Secrets = []string{tc.wrong}
			code, _, rb = send(t, c.Base()+tc.path, body, sign(wrong, now, body)...)
			if code != 401 {
				t.Fatalf("%s: wrong secret got %d", tc.path, code)
			}
			bodies = append(bodies, rb)
		}
		if tc.cfg.Scheme == "standard" || tc.cfg.Scheme == "stripe" || tc.cfg.Scheme == "slack" {
			for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
				code, _, rb = send(t, c.Base()+tc.path, body, sign(tc.cfg, now.Add(skew), body)...)
				if code != 401 {
					t.Fatalf("%s: timestamp %v off got %d", tc.path, skew, code)
				}
				bodies = append(bodies, rb)
			}
		}
		code, _, rb = send(t, c.Base()+tc.path, body, append(sign(tc.cfg, now, body), tc.header, "garbage,,==")...)
		if code != 401 {
			t.Fatalf("%s: malformed header got %d", tc.path, code)
		}
		bodies = append(bodies, rb)
		for _, b := range bodies[1:] {
			if string(b) != string(bodies[0]) {
				t.Fatalf("%s: 401 bodies differ, telling which part failed: %s vs %s", tc.path, b, bodies[0])
			}
		}
	}
	// GitHub preset: the delivery id is the event id, so a redelivery is a duplicate.
	body := []byte(`{"zen":"x"}`)
	h, _ := signature.Sign(signature.Config{Scheme: "github", Secrets: []string{"gh-secret"}}, signature.Message{Time: time.Now(), Body: body})
	code, hdr, _ := send(t, c.Base()+"/github", body, "X-Hub-Signature-256", h.Get("X-Hub-Signature-256"), "X-GitHub-Delivery", "d-1")
	if code != http.StatusOK || hdr.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("github redelivery: %d dup=%q", code, hdr.Get("Webhook-Duplicate"))
	}
}
