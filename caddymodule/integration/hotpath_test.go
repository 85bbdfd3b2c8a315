package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

const sampledLogCaddyfile = `{
	admin 127.0.0.1:{ADMIN}
	http_port {PORT}
	persist_config off
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
	for i := 0; i < 50 && count("all", "unauthorized") < 5; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if count("all", "unauthorized") == 0 {
		t.Fatalf("no line matched; the log ends:\n%s", lastLines(c.Log(), 3))
	}
	if got := count("sampled", "accepted"); got < 100 || got > n/2 {
		t.Errorf("sampled route: %d accepted lines for %d webhooks, want the first 100 of each second and then 1 in 100", got, n)
	}
	if got := count("sampled", "unauthorized"); got != 5 {
		t.Errorf("sampled route: %d refusal lines, want all 5", got)
	}
	if got := count("all", "accepted"); got != n {
		t.Errorf("log_accepted all: %d accepted lines, want %d", got, n)
	}
	resp, err := http.Get(c.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`caddy_webhook_inbound_requests_total\{outcome="accepted",route="sampled",source="webhook"\} (\d+)`).FindSubmatch(b)
	if m == nil || string(m[1]) != fmt.Sprint(n) {
		t.Errorf("the metrics do not count every sampled webhook: %q", m)
	}
}
