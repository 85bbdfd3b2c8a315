package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// pathSink is an HTTP sink whose answer per path the test changes as it goes.
type pathSink struct {
	URL    string
	mu     sync.Mutex
	status map[string]int
	hits   map[string]int
}

func startPathSink(t *testing.T) *pathSink {
	b := startBackend(t)
	s := &pathSink{URL: b.URL, status: map[string]int{}, hits: map[string]int{}}
	b.SetStatus(func(int) int { return 200 })
	b.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.hits[r.URL.Path]++
		code := s.status[r.URL.Path]
		s.mu.Unlock()
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "sink says hi")
	})
	return s
}

func (s *pathSink) set(path string, code int) {
	s.mu.Lock()
	s.status[path] = code
	s.mu.Unlock()
}

func (s *pathSink) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

const adminCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint good {
			url {SINK}/good
			allow_private
		}
		endpoint flaky {
			url {SINK}/flaky
			retry 50ms
			allow_private
		}
		endpoint gone {
			url {SINK}/gone
			events order.*
			allow_private
		}
		endpoint refused {
			url http://127.0.0.1:1/
			events never
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		respond 200
	}
}
`

type endpointView struct {
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Disabled    bool     `json:"disabled"`
	Reason      string   `json:"disabled_reason"`
	Pending     int      `json:"pending"`
	Delivered   int      `json:"delivered"`
	Dead        int      `json:"dead"`
	LastAttempt *struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"last_attempt"`
}

func endpointsByName(t *testing.T, c *Caddy) map[string]endpointView {
	var list []endpointView
	getJSON(t, c.AdminURL()+"/webhooks/endpoints", &list)
	m := map[string]endpointView{}
	for _, e := range list {
		m[e.Name] = e
	}
	return m
}

type deliveryView struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	EventID  string `json:"event_id"`
	State    string `json:"state"`
	Attempts []struct {
		Status    int     `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
		Error     string  `json:"error"`
	} `json:"attempts"`
}

func TestAdminAPIEveryRoute(t *testing.T) {
	sink := startPathSink(t)
	sink.set("/flaky", 500)
	sink.set("/gone", 410)
	c := startCaddy(t, strings.ReplaceAll(adminCaddyfile, "{SINK}", sink.URL), totvsKey)
	admin := c.AdminURL() + "/webhooks"

	eps := endpointsByName(t, c)
	if len(eps) != 4 || eps["gone"].Events[0] != "order.*" || eps["good"].Events[0] != "*" || eps["good"].Pending != 0 {
		t.Fatalf("endpoints before any event: %+v", eps)
	}
	if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"order":1}`), "Webhook-Event-Type", "order.created"); code != 202 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool {
		eps = endpointsByName(t, c)
		return eps["good"].Delivered == 1 && eps["flaky"].Dead == 1 && eps["gone"].Disabled
	}, "good delivered, flaky dead, gone disabled")

	if la := eps["good"].LastAttempt; la == nil || la.Status != 200 {
		t.Fatalf("good last attempt: %+v", la)
	}
	if !strings.Contains(eps["gone"].Reason, "410") || eps["gone"].Pending != 1 {
		t.Fatalf("gone: %+v", eps["gone"])
	}

	// Deliveries with their attempts.
	var dead []deliveryView
	getJSON(t, admin+"/deliveries?endpoint=flaky&state=dead", &dead)
	if len(dead) != 1 || len(dead[0].Attempts) != 2 || dead[0].Attempts[1].Status != 500 || dead[0].Attempts[0].LatencyMS <= 0 {
		t.Fatalf("dead deliveries: %+v", dead)
	}
	var all []deliveryView
	getJSON(t, admin+"/deliveries?limit=10", &all)
	if len(all) != 3 {
		t.Fatalf("all deliveries: %+v", all)
	}

	// Retry an endpoint's dead letters once it works again.
	sink.set("/flaky", 200)
	if code, m := adminPost(t, admin+"/endpoints/flaky/retry"); code != 200 || m["requeued"] != float64(1) {
		t.Fatalf("retry: %d %v", code, m)
	}
	testwait.Until(t, 10*time.Second, func() bool { return endpointsByName(t, c)["flaky"].Delivered == 1 }, "flaky delivered")

	// Requeue one delivered delivery.
	var good []deliveryView
	getJSON(t, admin+"/deliveries?endpoint=good", &good)
	if code, m := adminPost(t, admin+"/deliveries/"+good[0].ID+"/retry"); code != 200 || m["requeued"] != true {
		t.Fatalf("delivery retry: %d %v", code, m)
	}
	testwait.Until(t, 10*time.Second, func() bool { return sink.count("/good") == 2 }, "good delivered again")

	// Enable the disabled endpoint: its pending delivery goes out.
	sink.set("/gone", 200)
	if code, m := adminPost(t, admin+"/endpoints/gone/enable"); code != 200 || m["enabled"] != true {
		t.Fatalf("enable: %d %v", code, m)
	}
	testwait.Until(t, 10*time.Second, func() bool {
		e := endpointsByName(t, c)["gone"]
		return e.Delivered == 1 && !e.Disabled
	}, "gone delivered after enable")

	// Resend the latest event of each type.
	if code, m := adminPost(t, admin+"/endpoints/good/resend-latest"); code != 200 || m["queued"] != float64(1) {
		t.Fatalf("resend-latest: %d %v", code, m)
	}
	testwait.Until(t, 10*time.Second, func() bool { return sink.count("/good") == 3 }, "good resent")

	// Test sends now, outside the queue, and diagnoses.
	code, m := adminPost(t, admin+"/endpoints/good/test")
	if code != 200 || m["ok"] != true || m["status"] != float64(200) || m["answer"] != "sink says hi" || m["diagnosis"] != "ok" {
		t.Fatalf("test good: %d %v", code, m)
	}
	code, m = adminPost(t, admin+"/endpoints/refused/test")
	if code != 200 || m["ok"] != false || !strings.HasPrefix(m["diagnosis"].(string), "refused") {
		t.Fatalf("test refused: %d %v", code, m)
	}

	// Inbound counters.
	ev := totvsEvent(t, "12121212-1212-4212-8212-121212121212")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "wrong")
	send(t, c.Base()+"/totvs", []byte(`{"bad":`), "X-Api-Key", "tk-456")
	var inbound []struct {
		Route      string           `json:"route"`
		Source     string           `json:"source"`
		Received   int              `json:"received"`
		Accepted   int              `json:"accepted"`
		Duplicates int              `json:"duplicates"`
		Rejected   map[string]int64 `json:"rejected"`
	}
	getJSON(t, admin+"/inbound", &inbound)
	// One structured INFO line per webhook on Caddy's logger, and no secret in it.
	lines := 0
	for _, line := range strings.Split(c.Log(), "\n") {
		if strings.Contains(line, `"msg":"webhook"`) {
			lines++
			for _, f := range []string{`"level":"info"`, `"route":"totvs_crm"`, `"source":"totvs_crm"`, `"event_id":`, `"outcome":`, `"status":`, `"latency":`} {
				if !strings.Contains(line, f) {
					t.Errorf("log line lacks %s: %s", f, line)
				}
			}
		}
	}
	if lines != 4 || !strings.Contains(c.Log(), `"outcome":"unauthorized","status":401`) || strings.Contains(c.Log(), "tk-456") {
		t.Errorf("%d webhook log lines (want 4), or a secret in the log:\n%s", lines, c.Log())
	}
	if len(inbound) != 1 || inbound[0].Route != "totvs_crm" || inbound[0].Source != "totvs_crm" || inbound[0].Received != 4 || inbound[0].Accepted != 1 ||
		inbound[0].Duplicates != 1 || inbound[0].Rejected["unauthorized"] != 1 || inbound[0].Rejected["invalid_json"] != 1 {
		t.Fatalf("inbound: %+v", inbound)
	}

	// Errors are JSON with the right status.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/endpoints/good/test", 405},
		{"POST", "/endpoints/nope/test", 404},
		{"POST", "/endpoints/good/explode", 404},
		{"GET", "/deliveries?state=bogus", 400},
		{"GET", "/deliveries?limit=0", 400},
		{"GET", "/deliveries?endpoint=nope", 404},
		{"POST", "/deliveries/good~nope/retry", 404},
		{"GET", "/nothing", 404},
		{"POST", "/endpoints", 405},
	} {
		req, _ := http.NewRequest(tc.method, admin+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error  string `json:"detail"`
			Status int    `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		// Every refusal under /webhooks/ is problem+json.
		if resp.StatusCode != tc.status || e.Error == "" || e.Status != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %q (%s), want %d with a problem+json detail", tc.method, tc.path, resp.StatusCode, e.Error, resp.Header.Get("Content-Type"), tc.status)
		}
	}
}

func TestAdminAPIWithoutTheApp(t *testing.T) {
	c := startCaddy(t, `{
	admin 127.0.0.1:{ADMIN}
	http_port {PORT}
}
http://127.0.0.1:{PORT} {
	respond "no webhooks here"
}
`)
	var eps []any
	getJSON(t, c.AdminURL()+"/webhooks/endpoints", &eps)
	var ds []any
	getJSON(t, c.AdminURL()+"/webhooks/deliveries", &ds)
	if len(eps) != 0 || len(ds) != 0 {
		t.Fatalf("without the app: %v %v", eps, ds)
	}
	if code, m := adminPost(t, c.AdminURL()+"/webhooks/endpoints/x/test"); code != 404 || m["detail"] == nil {
		t.Fatalf("action without the app: %d %v", code, m)
	}
}

func TestMetricsFamilies(t *testing.T) {
	sink := startPathSink(t)
	sink.set("/flaky", 500)
	named := strings.Replace(strings.ReplaceAll(adminCaddyfile, "{SINK}", sink.URL), "auth header X-Api-Key {env.TOTVS_KEY}", "auth header X-Api-Key {env.TOTVS_KEY}\n\t\t\tname crm-workflows", 1)
	c := startCaddy(t, named, totvsKey)
	send(t, c.Base()+"/publish", []byte(`{}`), "Webhook-Event-Type", "x")
	ev := totvsEvent(t, "13131313-1313-4313-8313-131313131313")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "wrong")
	testwait.Until(t, 10*time.Second, func() bool { return endpointsByName(t, c)["flaky"].Dead == 1 }, "flaky dead")
	want := []string{
		`caddy_webhook_inbound_requests_total{outcome="accepted",route="crm-workflows",source="totvs_crm"} 1`,
		`caddy_webhook_inbound_requests_total{outcome="unauthorized",route="crm-workflows",source="totvs_crm"} 1`,
		`caddy_webhook_inbound_stage_duration_seconds_count{route="crm-workflows",stage="validate"} 1`,
		`caddy_webhook_inbound_stage_duration_seconds_count{route="crm-workflows",stage="store"} `,
		`caddy_webhook_inbound_stage_duration_seconds_count{route="crm-workflows",stage="auth"} 2`,
		`caddy_webhook_outbound_attempts_total{endpoint="good",outcome="delivered"} 1`,
		`caddy_webhook_outbound_attempts_total{endpoint="flaky",outcome="retry"} 1`,
		`caddy_webhook_outbound_attempts_total{endpoint="flaky",outcome="dead"} 1`,
		`caddy_webhook_delivery_duration_seconds_count{endpoint="flaky"} 2`,
		`caddy_webhook_queue_depth{endpoint="flaky",state="dead"} 1`,
		`caddy_webhook_queue_depth{endpoint="good",state="delivered"} 1`,
		`caddy_webhook_queue_depth{endpoint="good",state="pending"} 0`,
	}
	check := func() {
		t.Helper()
		resp, err := http.Get(c.AdminURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("metrics lack %s", w)
			}
		}
	}
	check()
	// A reload registers the collectors on the new registry: same series, no panic.
	reload(t, c, named)
	check()
}

// reload loads caddyfile (filled in by fillConfig) through the admin API.
func reload(t testing.TB, c *Caddy, caddyfile string) {
	t.Helper()
	cfg := fillConfig(caddyfile, c.Port, c.Admin, c.DataDir)
	out, err := runCmd(caddyBin, "adapt", "--config", writeTemp(t, cfg), "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("adapt: %v %s", err, out)
	}
	code, err := postJSON(c.AdminURL()+"/load", jsonOnly(out))
	if err != nil || code != 200 {
		t.Fatalf("reload: %d %v\n%s", code, err, c.Log())
	}
	http.DefaultClient.CloseIdleConnections()
}
