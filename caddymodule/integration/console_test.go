package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// consoleCaddyfile has one of everything the console shows and the alert rules watch: a
// route that hands on, one that quarantines, a feed, endpoints that deliver, answer 500 and
// cannot be reached (each dead-lettered after one retry), and the dashboard.
const consoleCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint erp {
			url {SINK}/erp
			events *
			allow_private
		}
		endpoint broken {
			url {BROKEN}/hook
			events deal.*
			retry 100ms
			allow_private
		}
		endpoint down {
			url http://127.0.0.1:{CLOSED}/hook
			events deal.*
			retry 100ms
			allow_private
		}
		feed rubeus-contatos {
			schema rubeus_servicos_contato
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /ploomes {
		webhook_receive ploomes {
			validation_key pl-123
		}
		reverse_proxy {SINKADDR}
	}
	handle /held {
		webhook_receive ploomes {
			name held
			validation_key pl-123
			on_invalid quarantine
		}
		reverse_proxy {SINKADDR}
	}
	handle /rubeus/contatos {
		webhook_feed rubeus-contatos {
			auth basic rubeus pw-1
		}
	}
	handle /ops/* {
		webhook_dashboard
	}
}
`

// consoleGateway starts Caddy with consoleCaddyfile and sends it traffic: Ploomes webhooks
// (accepted, one refused, one quarantined), and one published deal.won that erp gets and
// broken (500) and down (refused) dead-letter. It returns the published event's id.
func consoleGateway(t *testing.T) (*Caddy, *Backend, string) {
	t.Helper()
	be := startBackend(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":"db down","detail":"pq: connection refused"}`)
	}))
	t.Cleanup(broken.Close)
	closed := freePort(t)
	cfg := strings.NewReplacer("{SINK}", be.URL, "{SINKADDR}", be.Addr, "{BROKEN}", broken.URL, "{CLOSED}", fmt.Sprint(closed)).Replace(consoleCaddyfile)
	c := startCaddy(t, cfg)
	for i := 1; i <= 3; i++ {
		if code, _, b := send(t, c.Base()+"/ploomes", ploomesContact(i, false, false), "X-Ploomes-Validation-Key", "pl-123"); code != 200 {
			t.Fatalf("ploomes %d: %d %s", i, code, b)
		}
	}
	if code, _, _ := send(t, c.Base()+"/ploomes", []byte(`{"Action":`), "X-Ploomes-Validation-Key", "pl-123"); code != 400 {
		t.Fatalf("malformed body: %d", code)
	}
	// The embedded Ploomes schema refuses a string Id: held.
	if code, _, b := send(t, c.Base()+"/held", []byte(`{"Action":"Update","Entity":"Contacts","AccountId":57,"WebhookId":1,"New":{"Id":"x"}}`), "X-Ploomes-Validation-Key", "pl-123"); code != 202 {
		t.Fatalf("quarantined: %d %s", code, b)
	}
	code, _, rb := send(t, c.Base()+"/publish", []byte(`{"deal":42}`), "Webhook-Event-Type", "deal.won")
	var pub struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}
	if code != 202 || json.Unmarshal(rb, &pub) != nil || pub.Endpoints != 3 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 20*time.Second, func() bool {
		var dead []map[string]any
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=dead", &dead)
		return len(dead) == 2 && be.Count() >= 4
	}, "broken and down dead-lettered, erp delivered")
	return c, be, pub.ID
}

// The alert rules name only metrics the running gateway exposes: every caddy_webhook_*
// name in examples/prometheus/hookgate-rules.yml is in the gateway's /metrics once it has
// seen traffic, so a renamed metric fails here rather than in an operator's Prometheus.
func TestAlertRulesUseExposedMetrics(t *testing.T) {
	rules, err := os.ReadFile("../../examples/prometheus/hookgate-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bcaddy_webhook_[a-z_]+`).FindAllString(string(rules), -1) {
		names[m] = true
	}
	if len(names) < 8 {
		t.Fatalf("the rules name %d metrics: %v", len(names), names)
	}
	c, _, _ := consoleGateway(t)
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(metricsText(t, c)), "\n") {
		if strings.HasPrefix(line, "caddy_webhook_") {
			exposed[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}
	var missing []string
	for n := range names {
		if !exposed[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the alert rules use metrics the gateway does not expose: %v", missing)
	}
}

// The admin routes behind the console: activity, search and an event's story.
func TestConsoleAPI(t *testing.T) {
	c, _, evID := consoleGateway(t)
	var act struct {
		Instance    string `json:"instance"`
		StepSeconds int    `json:"step_seconds"`
		Routes      []struct {
			Route    string              `json:"route"`
			Outcomes map[string][]uint64 `json:"outcomes"`
		} `json:"routes"`
		Endpoints []struct {
			Endpoint string              `json:"endpoint"`
			Attempts map[string][]uint64 `json:"attempts"`
			Pending  []*uint64           `json:"pending"`
		} `json:"endpoints"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/activity?window=10m", &act)
	total := func(v []uint64) (n uint64) {
		for _, x := range v {
			n += x
		}
		return n
	}
	routes := map[string]map[string][]uint64{}
	for _, r := range act.Routes {
		routes[r.Route] = r.Outcomes
	}
	if act.StepSeconds != 10 || act.Instance == "" || total(routes["ploomes"]["accepted"]) != 3 || total(routes["ploomes"]["invalid_json"]) != 1 || total(routes["held"]["quarantined"]) != 1 {
		t.Fatalf("activity: %+v", act)
	}
	eps := map[string]map[string][]uint64{}
	sampled := map[string]bool{}
	for _, e := range act.Endpoints {
		eps[e.Endpoint] = e.Attempts
		for _, p := range e.Pending {
			sampled[e.Endpoint] = sampled[e.Endpoint] || p != nil
		}
	}
	if total(eps["erp"]["delivered"]) != 1 || total(eps["broken"]["retry"]) != 1 || total(eps["broken"]["dead"]) != 1 || total(eps["down"]["dead"]) != 1 || !sampled["erp"] {
		t.Fatalf("endpoints' activity: %+v (sampled %v)", eps, sampled)
	}
	for _, bad := range []string{"?window=5m", "?window=1h&x=1"} {
		if code, b := adminRaw(t, "GET", c.AdminURL()+"/webhooks/activity"+bad); code != 400 {
			t.Errorf("activity%s: %d %s", bad, code, b)
		}
	}

	// An event's story: its deliveries with every attempt; broken's answer and down's error.
	var story struct {
		EventID    string `json:"event_id"`
		Deliveries []struct {
			ID       string `json:"id"`
			Endpoint string `json:"endpoint"`
			State    string `json:"state"`
			Attempts []struct {
				Status   int    `json:"status"`
				Error    string `json:"error"`
				Response string `json:"response"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/events/"+evID, &story)
	states := map[string]string{}
	for _, d := range story.Deliveries {
		states[d.Endpoint] = d.State
		switch d.Endpoint {
		case "broken":
			if len(d.Attempts) != 2 || d.Attempts[0].Status != 500 || !strings.Contains(d.Attempts[0].Response, "db down") {
				t.Errorf("broken's attempts: %+v", d.Attempts)
			}
		case "down":
			if len(d.Attempts) != 2 || d.Attempts[0].Status != 0 || !strings.Contains(d.Attempts[0].Error, "refused") || d.Attempts[0].Response != "" {
				t.Errorf("down's attempts: %+v", d.Attempts)
			}
		}
	}
	if states["erp"] != "delivered" || states["broken"] != "dead" || states["down"] != "dead" {
		t.Fatalf("story: %+v", story)
	}
	// Search: by event id, by delivery id, by request id (and its event).
	var found struct {
		EventIDs   []string `json:"event_ids"`
		Requests   []struct{ ID, EventID string }
		Deliveries []struct{ ID string }
	}
	getJSON(t, c.AdminURL()+"/webhooks/search?id="+evID, &found)
	if len(found.EventIDs) != 1 || found.EventIDs[0] != evID || len(found.Deliveries) != 3 {
		t.Fatalf("search by event id: %+v", found)
	}
	did := found.Deliveries[0].ID
	getJSON(t, c.AdminURL()+"/webhooks/search?id="+did, &found)
	if len(found.Deliveries) != 1 || found.Deliveries[0].ID != did || len(found.EventIDs) != 1 || found.EventIDs[0] != evID {
		t.Fatalf("search by delivery id: %+v", found)
	}
	var recs []struct {
		ID      string `json:"id"`
		EventID string `json:"event_id"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/requests?outcome=accepted", &recs)
	if len(recs) != 3 {
		t.Fatalf("request log: %+v", recs)
	}
	getJSON(t, c.AdminURL()+"/webhooks/search?id="+recs[0].ID, &found)
	if len(found.Requests) != 1 || found.Requests[0].ID != recs[0].ID || len(found.EventIDs) != 1 || found.EventIDs[0] != recs[0].EventID {
		t.Fatalf("search by request id: %+v", found)
	}
	var inStory struct {
		Requests []struct {
			ID    string `json:"id"`
			Route string `json:"route"`
		} `json:"requests"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/events/"+recs[0].EventID, &inStory)
	if len(inStory.Requests) != 1 || inStory.Requests[0].ID != recs[0].ID {
		t.Fatalf("an inbound event's story: %+v", inStory)
	}
	getJSON(t, c.AdminURL()+"/webhooks/search?id=nothing-like-this", &found)
	if len(found.EventIDs)+len(found.Requests)+len(found.Deliveries) != 0 {
		t.Fatalf("search for nothing: %+v", found)
	}
	// Bad input: precise refusals.
	for path, want := range map[string]int{
		"/webhooks/search":                                400,
		"/webhooks/search?id=":                            400,
		"/webhooks/search?id=a&id=b":                      400,
		"/webhooks/search?id=a&limit=3":                   400,
		"/webhooks/search?id=" + strings.Repeat("x", 201): 400,
		"/webhooks/events/evt_nothing":                    404,
		"/webhooks/events/" + evID + "?x=1":               400,
	} {
		if code, b := adminRaw(t, "GET", c.AdminURL()+path); code != want || !strings.Contains(string(b), `"type"`) {
			t.Errorf("GET %s: %d %s, want %d problem+json", path, code, b, want)
		}
	}
	if code, _ := adminRaw(t, "POST", c.AdminURL()+"/webhooks/events/"+evID); code != 405 {
		t.Errorf("POST an event's story: %d", code)
	}
}
