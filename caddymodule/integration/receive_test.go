package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sendersCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key {env.PLOOMES_KEY}
		}
		reverse_proxy {BACKEND} {
			header_up X-Webhook-Source {http.webhook.source}
			header_up X-Webhook-Event-Id {http.webhook.event_id}
			header_up X-Webhook-Verified {http.webhook.verified}
		}
	}
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
			max_body 2KB
		}
		reverse_proxy {BACKEND} {
			header_up X-Webhook-Source {http.webhook.source}
			header_up X-Webhook-Event-Id {http.webhook.event_id}
			header_up X-Webhook-Verified {http.webhook.verified}
		}
	}
	handle /sintegre {
		webhook_receive sintegre {
			auth basic ons {env.SINTEGRE_PASS}
			auth bearer {env.SINTEGRE_TOKEN}
		}
		reverse_proxy {BACKEND} {
			header_up X-Webhook-Source {http.webhook.source}
			header_up X-Webhook-Event-Id {http.webhook.event_id}
			header_up X-Webhook-Verified {http.webhook.verified}
		}
	}
	handle /rubeus {
		webhook_receive rubeus {
			auth query key {env.RUBEUS_KEY}
		}
		reverse_proxy {BACKEND} {
			header_up X-Webhook-Source {http.webhook.source}
			header_up X-Webhook-Event-Id {http.webhook.event_id}
			header_up X-Webhook-Verified {http.webhook.verified}
		}
	}
}
`

var senderEnv = []string{"PLOOMES_KEY=pk-123", "TOTVS_KEY=tk-456", "SINTEGRE_PASS=sp-789", "SINTEGRE_TOKEN=st-abc", "RUBEUS_KEY=rk-def"}

type route struct {
	path, sender string
	good         []string // credential headers
	bad          []string
	query        string
}

var routes = []route{
	{"/ploomes", "ploomes", []string{"X-Ploomes-Validation-Key", "pk-123"}, []string{"X-Ploomes-Validation-Key", "pk-124"}, ""},
	{"/totvs", "totvs_crm", []string{"X-Api-Key", "tk-456"}, []string{"X-Api-Key", "nope"}, ""},
	{"/sintegre", "sintegre", []string{"Authorization", "st-abc"}, []string{"Authorization", "Basic b25zOndyb25n"}, ""},
	{"/rubeus", "rubeus", nil, nil, "?key=rk-def"},
}

func problem(t *testing.T, h http.Header, body []byte) map[string]any {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	for _, k := range []string{"type", "title", "status", "detail"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("problem without %q: %s", k, body)
		}
	}
	return p
}

func TestSendersThroughRealCaddy(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, strings.ReplaceAll(sendersCaddyfile, "{BACKEND}", be.Addr), senderEnv...)

	for _, rt := range routes {
		t.Run(rt.sender, func(t *testing.T) {
			url := c.Base() + rt.path + rt.query
			files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "samples", rt.sender, "*.json"))
			for _, f := range files {
				body, _ := os.ReadFile(f)
				before := be.Count()
				code, _, rb := send(t, url, body, rt.good...)
				if code != 200 {
					t.Fatalf("%s: %d %s", f, code, rb)
				}
				got := be.Got()[before]
				if !bytes.Equal(got.Body, body) || got.Length != int64(len(body)) {
					t.Fatalf("%s: backend got %d bytes, Content-Length %d; sent %d", f, len(got.Body), got.Length, len(body))
				}
				if got.Header.Get("X-Webhook-Source") != rt.sender || got.Header.Get("X-Webhook-Event-Id") == "" || got.Header.Get("X-Webhook-Verified") != "true" {
					t.Fatalf("%s: placeholders reached the backend as %v", f, got.Header)
				}
				// The same delivery again is a duplicate: 200, flagged, not handed on.
				code, h, _ := send(t, url, body, rt.good...)
				if code != 200 || h.Get("Webhook-Duplicate") != "true" || be.Count() != before+1 {
					t.Fatalf("%s: resend got %d dup=%q, backend saw %d", f, code, h.Get("Webhook-Duplicate"), be.Count()-before)
				}
			}
			body, _ := os.ReadFile(files[0])
			n := be.Count()

			// 405
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
				t.Fatalf("GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
			}
			problem(t, resp.Header, rb)

			// 401: wrong and missing credential get the same answer.
			badURL := url
			if rt.query != "" {
				badURL = c.Base() + rt.path + "?key=wrong"
			}
			code, h, rb1 := send(t, badURL, body, rt.bad...)
			if code != 401 {
				t.Fatalf("bad credential: %d", code)
			}
			p := problem(t, h, rb1)
			code, _, rb2 := send(t, c.Base()+rt.path, body)
			if code != 401 || !bytes.Equal(rb1, rb2) {
				t.Fatalf("missing credential: %d %s vs %s", code, rb2, rb1)
			}
			if rt.sender == "sintegre" && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("401 on a basic route without WWW-Authenticate: %v", h)
			}
			if strings.Contains(string(rb1), "pk-") || p["status"].(float64) != 401 {
				t.Fatal("401 body leaks")
			}

			// 415
			code, h, rb = send(t, url, body, append([]string{"Content-Type", "text/plain"}, rt.good...)...)
			if code != 415 {
				t.Fatalf("text/plain: %d", code)
			}
			problem(t, h, rb)

			// 400 with the byte offset
			code, h, rb = send(t, url, []byte(`{"a": tru}`), rt.good...)
			p = problem(t, h, rb)
			if code != 400 || p["offset"] != float64(9) {
				t.Fatalf("invalid JSON: %d %s", code, rb)
			}

			// 422 with every violation and its pointer
			code, h, rb = send(t, url, []byte(`{"eventId": 7, "nome": 8, "Action": 9}`), rt.good...)
			p = problem(t, h, rb)
			errs, _ := p["errors"].([]any)
			if code != 422 || len(errs) == 0 {
				t.Fatalf("schema: %d %s", code, rb)
			}
			for _, e := range errs {
				m := e.(map[string]any)
				if _, ok := m["pointer"]; !ok || m["message"] == "" {
					t.Fatalf("violation without pointer/message: %s", rb)
				}
			}
			if be.Count() != n {
				t.Fatalf("a refused request reached the backend")
			}
		})
	}

	// 413 while reading: totvs has max_body 2KB.
	big := []byte(`{"eventId":"` + strings.Repeat("a", 3000) + `"}`)
	code, h, rb := send(t, c.Base()+"/totvs", big, "X-Api-Key", "tk-456")
	if code != 413 {
		t.Fatalf("big body: %d", code)
	}
	problem(t, h, rb)

	// No secret in the admin config.
	resp, err := http.Get(c.AdminURL() + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, kv := range senderEnv {
		if secret := strings.SplitN(kv, "=", 2)[1]; bytes.Contains(cfg, []byte(secret)) {
			t.Fatalf("secret %s appears in /config/", kv)
		}
	}
	if !bytes.Contains(cfg, []byte("{env.PLOOMES_KEY}")) {
		t.Fatalf("config should keep the placeholder: %s", cfg)
	}
	if strings.Contains(c.Log(), "pk-123") || strings.Contains(c.Log(), "tk-456") {
		t.Fatal("a secret appears in Caddy's log")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ name, block, want string }{
		{"no auth line", "webhook_receive ploomes", "auth none"},
		{"unknown preset", "webhook_receive nope {\n\t\tauth none\n\t}", "unknown preset"},
		{"unset secret", "webhook_receive ploomes {\n\t\tvalidation_key {env.HOOKGATE_TEST_UNSET_VAR}\n\t}", "HOOKGATE_TEST_UNSET_VAR"},
		{"bad schema", "webhook_receive {\n\t\tauth none\n\t\tschema /does/not/exist.json\n\t}", "neither an embedded schema"},
		{"bad event id", "webhook_receive {\n\t\tauth none\n\t\tevent_id md5\n\t}", "body_sha256"},
		{"bad hmac scheme", "webhook_receive {\n\t\tauth hmac md5 secret\n\t}", "unknown scheme"},
		{"none with credential", "webhook_receive {\n\t\tauth none\n\t\tauth bearer x\n\t}", "cannot be combined"},
		{"bad dedupe", "webhook_receive {\n\t\tauth none\n\t\tdedupe forever\n\t}", "dedupe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := "{\n\tadmin off\n}\nhttp://127.0.0.1:1 {\n\t" + tc.block + "\n\trespond ok\n}\n"
			path := filepath.Join(t.TempDir(), "Caddyfile")
			_ = os.WriteFile(path, []byte(cfg), 0o600)
			out, err := runCmd(caddyBin, "validate", "--config", path, "--adapter", "caddyfile")
			if err == nil {
				t.Fatalf("caddy validate accepted:\n%s\n%s", cfg, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("error does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
