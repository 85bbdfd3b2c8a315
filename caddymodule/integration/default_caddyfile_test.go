package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// TestDefaultCaddyfile runs the repository's top-level Caddyfile (ports moved to free ones)
// with examples/dev.env and sends each sender's sample as the README's curl commands do.
func TestDefaultCaddyfile(t *testing.T) {
	raw, err := os.ReadFile("../../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	app, publish, dash := freePort(t), freePort(t), freePort(t)
	cfg := strings.NewReplacer("localhost:2019", "127.0.0.1:{ADMIN}", "8080", "{PORT}", "9090", itoa(app),
		"8081", itoa(publish), "8082", itoa(dash)).Replace(string(raw))
	var env []string
	f, err := os.Open("../../examples/dev.env")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			env = append(env, l)
		}
	}
	f.Close()
	c := startCaddy(t, cfg, env...)
	cases := []struct {
		path, sample string
		hdr          []string
	}{
		{"/webhooks/ploomes", "ploomes/contact-update.json", []string{"X-Ploomes-Validation-Key", "dev-ploomes-key"}},
		{"/webhooks/totvs", "totvs_crm/opportunity-won.json", []string{"Authorization", "dev-totvs-token"}},
		{"/webhooks/sintegre", "sintegre/ipdo-daily.json", []string{"Authorization", "Basic b25zOmRldi1zaW50ZWdyZS1wYXNzd29yZA=="}},
		{"/webhooks/sintegre", "sintegre/ipdo-daily.json", []string{"Authorization", "dev-sintegre-token"}},
		{"/webhooks/rubeus?key=dev-rubeus-key", "rubeus/contato.json", nil},
	}
	for i, tc := range cases {
		body := sample(t, tc.sample)
		code, h, rb := send(t, c.Base()+tc.path, body, tc.hdr...)
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.path, code, rb)
		}
		if i == 3 { // the same SINtegre product again, with the token: a duplicate
			if h.Get("Webhook-Duplicate") != "true" {
				t.Fatalf("resend of the SINtegre product was not a duplicate")
			}
			continue
		}
		var got struct {
			From  string `json:"received_from"`
			ID    string `json:"event_id"`
			Bytes int    `json:"bytes"`
		}
		if err := json.Unmarshal(rb, &got); err != nil || got.ID == "" || got.Bytes != len(body) {
			t.Fatalf("%s: the internal app answered %s (%v)", tc.path, rb, err)
		}
	}
	if code, _, _ := send(t, c.Base()+"/webhooks/totvs", sample(t, "totvs_crm/opportunity-won.json"), "Authorization", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	// Rubeus' key in another case, or percent-encoded: the auth reads ?key= exactly (after
	// decoding), so ?KEY= is refused, and neither log may show it.
	for _, q := range []string{"KEY", "Key", "%6Bey"} {
		code, _, _ := send(t, c.Base()+"/webhooks/rubeus?"+q+"=dev-rubeus-key", sample(t, "rubeus/contato.json"))
		if want := map[bool]int{true: 200, false: 401}[q == "%6Bey"]; code != want {
			t.Fatalf("?%s=: %d, want %d", q, code, want)
		}
	}

	// Outbound: the README's publish command, delivered to the internal app.
	code, _, rb := send(t, "http://127.0.0.1:"+itoa(publish)+"/", []byte(`{"deal":7}`), "Webhook-Event-Type", "deal.won")
	if code != 202 || !strings.Contains(string(rb), `"endpoints":1`) {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool {
		return endpointsByName(t, c)["internal-app"].Delivered == 1
	}, "the published event delivered")

	// Rubeus Serviços: a contact published on the publish port is pulled by Rubeus' call.
	code, _, rb = send(t, "http://127.0.0.1:"+itoa(publish)+"/", sample(t, "rubeus_servicos/contato-envio.json"),
		"Webhook-Event-Type", "feed.rubeus-contatos")
	if code != 202 || !strings.Contains(string(rb), `"records":1`) {
		t.Fatalf("publish to the feed: %d %s", code, rb)
	}
	req, _ := http.NewRequest(http.MethodGet, c.Base()+"/rubeus/contatos", nil)
	req.SetBasicAuth("rubeus-servicos", "dev-rubeus-servicos-password")
	fresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(fresp.Body)
	fresp.Body.Close()
	var recs []map[string]any
	if fresp.StatusCode != 200 || json.Unmarshal(page, &recs) != nil || len(recs) != 1 || recs[0]["codigo"] != "34985761" {
		t.Fatalf("Rubeus' call: %d %s", fresp.StatusCode, page)
	}

	// The dashboard page.
	resp, err := http.Get("http://127.0.0.1:" + itoa(dash) + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<title>Hookgate</title>") {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}

	// The access log has a line per webhook request, and no credential from dev.env in any
	// line of any log (a 401 included), in clear or as the Basic header's base64.
	testwait.Until(t, 10*time.Second, func() bool {
		return strings.Count(c.Log(), `"logger":"http.log.access`) >= len(cases)+4
	}, "the access log lines")

	_, rubeusLog := requests(t, c, "rubeus", "")
	logged := c.Log() + rubeusLog
	if !strings.Contains(logged, `"uri":"/webhooks/rubeus?key=REDACTED"`) {
		t.Errorf("the Rubeus request's access log line lacks its redacted uri")
	}
	secrets := []string{"b25zOmRldi1zaW50ZWdyZS1wYXNzd29yZA=="}
	for _, kv := range env {
		if _, v, _ := strings.Cut(kv, "="); len(v) >= 6 { // SINTEGRE_USER=ons is a common word
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		if strings.Contains(logged, s) {
			t.Errorf("a credential from examples/dev.env is in Caddy's log: %s", s)
		}
	}
}
