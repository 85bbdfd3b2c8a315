package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

// inboundCount reads caddy_webhook_inbound_requests_total for a route (source "webhook")
// and outcome from Caddy's metrics: "0" when the series is absent.
func inboundCount(t *testing.T, c *Caddy, route, outcome string) string {
	t.Helper()
	m := regexp.MustCompile(`caddy_webhook_inbound_requests_total\{outcome="` + outcome + `",route="` + route +
		`",source="webhook"\} (\d+)`).FindSubmatch(metricsText(t, c))
	if m == nil {
		return "0"
	}
	return string(m[1])
}

// metricsText is what Caddy's admin /metrics answers.
func metricsText(t *testing.T, c *Caddy) []byte {
	t.Helper()
	resp, err := http.Get(c.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

const sampledLogCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /sampled {
		webhook_receive {
			auth header X-Api-Key k
			name sampled
		}
		respond 200
	}
	handle /all {
		webhook_receive {
			auth header X-Api-Key k
			name all
			log_accepted all
		}
		respond 200
	}
}
`

// The per-webhook line of accepted webhooks is sampled (the first 100 of each second,
// then one in 100); refusals are always logged; the metrics count every webhook.
// log_accepted all logs each one.
func TestAcceptedWebhookLinesAreSampled(t *testing.T) {
	c := startCaddy(t, sampledLogCaddyfile)
	const n = 1000
	for _, route := range []string{"sampled", "all"} {
		parallel(n, func(i int) {
			req, _ := http.NewRequest(http.MethodPost, c.Base()+"/"+route, strings.NewReader(`{"n":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Api-Key", "k")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		for i := 0; i < 5; i++ {
			send(t, c.Base()+"/"+route, []byte(`{}`), "X-Api-Key", "wrong")
		}
	}
	http.DefaultClient.CloseIdleConnections()
	count := func(route, outcome string) int {
		return strings.Count(c.Log(), `"route":"`+route+`","source":"webhook","event_id":"","outcome":"`+outcome+`"`)
	}
	// The last requests' lines are written last: once they are in, every line is.
	testwait.Poll(30*time.Second, func() bool { return count("all", "unauthorized") >= 5 })
	if count("all", "unauthorized") == 0 {
		t.Fatalf("no line matched; the log ends:\n%s", lastLines(c.Log(), 3))
	}
	// At most 100 a second and then 1 in 100: even if the 1000 requests took 7 s, under 3/4.
	if got := count("sampled", "accepted"); got < 100 || got > n*3/4 {
		t.Errorf("sampled route: %d accepted lines for %d webhooks, want the first 100 of each second and then 1 in 100", got, n)
	}
	if got := count("sampled", "unauthorized"); got != 5 {
		t.Errorf("sampled route: %d refusal lines, want all 5", got)
	}
	if got := count("all", "accepted"); got != n {
		t.Errorf("log_accepted all: %d accepted lines, want %d", got, n)
	}
	if got := inboundCount(t, c, "sampled", "accepted"); got != fmt.Sprint(n) {
		t.Errorf("the metrics count %s of the %d sampled webhooks", got, n)
	}
}

const asyncOutageCaddyfile = `{
	{GLOBAL}
	webhooks {
		store redis {REDIS}
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive {
		name async-in
		auth none
		mode async
		deliver_to {SINK}/in
	}
}
`

// A queue outage in async mode is its own outcome: 503 to the sender, counted as
// queue_unavailable in the metrics and /webhooks/inbound, never as accepted (the glue used
// to guess "queued" from a 202 and count a failed hand-off as accepted, backend_503).
func TestAsyncQueueOutageIsItsOwnOutcome(t *testing.T) {
	rs := redistest.Start(t)
	sink := startBackend(t)
	c := startCaddy(t, strings.NewReplacer("{REDIS}", rs.URL(), "{SINK}", sink.URL).Replace(asyncOutageCaddyfile))
	if code, _, rb := send(t, c.Base(), []byte(`{"n":1}`)); code != 202 {
		t.Fatalf("queued: %d %s", code, rb)
	}
	rs.Stop()
	code, h, rb := send(t, c.Base(), []byte(`{"n":2}`))
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(rb), "queue_unavailable") {
		t.Fatalf("queue away: %d %s", code, rb)
	}
	metric := func(outcome string) string { return inboundCount(t, c, "async-in", outcome) }
	if metric("queued") != "1" || metric("queue_unavailable") != "1" || metric("accepted") != "0" {
		t.Errorf("metrics: queued %s, queue_unavailable %s, accepted %s", metric("queued"), metric("queue_unavailable"), metric("accepted"))
	}
	var inbound []struct {
		Route    string           `json:"route"`
		Accepted int              `json:"accepted"`
		Queued   int              `json:"queued"`
		Rejected map[string]int64 `json:"rejected"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound", &inbound)
	if len(inbound) != 1 || inbound[0].Queued != 1 || inbound[0].Accepted != 0 || inbound[0].Rejected["queue_unavailable"] != 1 || len(inbound[0].Rejected) != 1 {
		t.Errorf("/webhooks/inbound: %+v", inbound)
	}
}
