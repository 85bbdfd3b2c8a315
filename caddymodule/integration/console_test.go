package integration

import (
	"context"
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

	"github.com/chromedp/chromedp"
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
	handle /async {
		webhook_receive ploomes {
			name pasync
			validation_key pl-123
			mode async
			deliver_to {SINK}/async
		}
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
	// increase() sees an endpoint's first dead letter only if the series was there before
	// it: every endpoint's attempt counters are exposed at 0 from the start.
	if m := string(metricsText(t, c)); !strings.Contains(m, `caddy_webhook_outbound_attempts_total{endpoint="erp",outcome="dead"} 0`) {
		t.Fatal("erp's dead-letter counter is not exposed at 0")
	}
}

// A deleted subscription's metric series and console activity go with it (within a
// sampling period), so creating and deleting subscriptions does not grow them for ever.
func TestDeletedSubscriptionLeavesNoSeries(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", "subscriptions {\n\t\t\tallow_private\n\t\t}"))
	code, sub := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+be.URL+`/s","events":["deal.*"]}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, sub)
	}
	id := sub["id"].(string)
	series := `caddy_webhook_outbound_attempts_total{endpoint="` + id + `",outcome="delivered"}`
	testwait.Until(t, 15*time.Second, func() bool { return strings.Contains(string(metricsText(t, c)), series+" 0") }, "the new subscription's counters at 0")
	publish(t, c, "deal.won", `{"a":1}`)
	testwait.Until(t, 10*time.Second, func() bool { return strings.Contains(string(metricsText(t, c)), series+" 1") }, "its delivery counted")
	inActivity := func() bool {
		var a struct {
			Endpoints []struct{ Endpoint string } `json:"endpoints"`
		}
		getJSON(t, c.AdminURL()+"/webhooks/activity", &a)
		for _, e := range a.Endpoints {
			if e.Endpoint == id {
				return true
			}
		}
		return false
	}
	if !inActivity() {
		t.Fatal("the subscription's activity is not listed")
	}
	if code, _ := call(t, "DELETE", c.AdminURL()+"/webhooks/subscriptions/"+id, ""); code != 204 && code != 200 {
		t.Fatalf("delete: %d", code)
	}
	testwait.Until(t, 25*time.Second, func() bool {
		return !strings.Contains(string(metricsText(t, c)), `endpoint="`+id+`"`) && !inActivity()
	}, "the deleted subscription's series gone from /metrics and the activity")
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
	for _, bad := range []string{"?window=5m", "?window=1h&x=1", "?window=10m&window=1h", "?window="} {
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
	if code, b := adminRaw(t, "GET", c.AdminURL()+"/webhooks/events/a%2Fb"); code != 404 || !strings.Contains(string(b), `no request log record and no delivery of event \"a/b\"`) {
		t.Errorf("an id holding a slash: %d %s", code, b)
	}
	if code, _ := adminRaw(t, "POST", c.AdminURL()+"/webhooks/events/"+evID); code != 405 {
		t.Errorf("POST an event's story: %d", code)
	}

	// An async route's webhook: one story from the request through the queued delivery
	// (which the queue files under an event id of its own) to its attempt, whichever id is
	// looked up.
	if code, _, b := send(t, c.Base()+"/async", ploomesContact(42, false, false), "X-Ploomes-Validation-Key", "pl-123"); code != 202 {
		t.Fatalf("async: %d %s", code, b)
	}
	var arecs []struct {
		ID             string `json:"id"`
		EventID        string `json:"event_id"`
		QueuedEventID  string `json:"queued_event_id"`
		QueuedDelivery string `json:"queued_delivery"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound/pasync/requests", &arecs)
	if len(arecs) != 1 || arecs[0].QueuedEventID == "" || arecs[0].QueuedDelivery == "" || arecs[0].QueuedEventID == arecs[0].EventID {
		t.Fatalf("the async request's record: %+v", arecs)
	}
	type asyncStory struct {
		Requests   []struct{ ID string } `json:"requests"`
		Deliveries []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Attempts []struct {
				Status int `json:"status"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	for _, id := range []string{arecs[0].EventID, arecs[0].QueuedEventID} {
		var st asyncStory
		testwait.Until(t, 10*time.Second, func() bool {
			getJSON(t, c.AdminURL()+"/webhooks/events/"+id, &st)
			return len(st.Deliveries) == 1 && st.Deliveries[0].State == "delivered"
		}, "the async webhook's delivery in its story")
		if len(st.Requests) != 1 || st.Requests[0].ID != arecs[0].ID || st.Deliveries[0].ID != arecs[0].QueuedDelivery || len(st.Deliveries[0].Attempts) != 1 {
			t.Fatalf("the story of %s: %+v", id, st)
		}
	}
	getJSON(t, c.AdminURL()+"/webhooks/search?id="+arecs[0].ID, &found)
	if len(found.Deliveries) != 1 || found.Deliveries[0].ID != arecs[0].QueuedDelivery {
		t.Fatalf("search by the async request's id: %+v", found)
	}

	// A feed's record has a story too: its delivery to the feed's endpoint.
	records, err := os.ReadFile("../../examples/samples/rubeus_servicos/contato-envio.json")
	if err != nil {
		t.Fatal(err)
	}
	code, _, rb := send(t, c.Base()+"/publish", records, "Webhook-Event-Type", "feed.rubeus-contatos")
	var fpub struct {
		ID string `json:"id"`
	}
	if code != 202 || json.Unmarshal(rb, &fpub) != nil || fpub.ID == "" {
		t.Fatalf("publish to the feed: %d %s", code, rb)
	}
	var fs struct {
		Deliveries []struct{ Endpoint, State string } `json:"deliveries"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/events/"+fpub.ID, &fs)
	if len(fs.Deliveries) != 1 || fs.Deliveries[0].Endpoint != "feed.rubeus-contatos" || fs.Deliveries[0].State != "pending" {
		t.Fatalf("a feed record's story: %+v", fs)
	}
}

// The console in Chromium: every view at 1280 and 1600 px and a phone's width overflows
// nothing (no table or chart wider than its card, no page scrolling sideways); the
// Overview charts this instance's activity per route and endpoint; search finds the
// published event by id and shows its story with the 500's answer and the refused
// connection's error; a dead letter's row and a request's detail lead to the story; the
// docs' screenshots are taken here (HOOKGATE_DOCS_SHOTS=1 writes them to docs/).
func TestConsoleViews(t *testing.T) {
	browser := chromiumPath(t)
	c, _, evID := consoleGateway(t)
	ctx := browserContext(t, browser)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	const overflow = `(() => {
		const out = [];
		if (document.documentElement.scrollWidth > innerWidth + 1) out.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " + innerWidth);
		for (const sec of document.querySelectorAll("main section")) {
			if (sec.hidden) continue;
			if (sec.scrollWidth > sec.clientWidth + 1) out.push(sec.id + " overflows: " + sec.scrollWidth + " > " + sec.clientWidth);
			const right = sec.getBoundingClientRect().right + 1;
			for (const box of sec.querySelectorAll(".scroll")) {
				const table = box.querySelector("table");
				if (!table.hidden && (table.scrollWidth > box.clientWidth + 1 || table.getBoundingClientRect().right > right)) out.push(sec.id + ": table " + table.scrollWidth + " px in " + box.clientWidth);
			}
			for (const card of sec.querySelectorAll(".chart-card")) {
				const r = card.getBoundingClientRect(), s = card.querySelector("svg").getBoundingClientRect();
				if (r.right > right || s.right > r.right + 1 || s.width < 100) out.push(sec.id + ": chart " + card.dataset.chart + " " + s.width + " px, card right " + r.right + " > " + right);
			}
		}
		return JSON.stringify(out);
	})()`
	views := map[string]struct{ shown, hidden string }{
		"overview":      {"#charts", "#endpoints"},
		"inbound":       {"#inbound", "#endpoints"},
		"outbound":      {"#endpoints", "#inbound"},
		"subscriptions": {"#endpoints", "#requests"},
		"feeds":         {"#feeds", "#dead"},
		"breakers":      {"#breakers", "#feeds"},
		"quarantine":    {"#quarantine", "#charts"},
	}
	for _, size := range []struct {
		name string
		w, h int64
	}{{"1280", 1280, 900}, {"1600", 1600, 1000}, {"phone", 390, 844}} {
		for name, v := range views {
			ready := `document.getElementById("updated").textContent.startsWith("updated")`
			if name == "overview" {
				ready += ` && document.querySelectorAll("#route-charts figure").length === 2 && document.querySelectorAll("#endpoint-charts figure").length >= 3`
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(c.Base()+"/ops/?view="+name),
				chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
				t.Fatalf("%s at %s: %v\n%s", name, size.name, err, eval(`document.body.innerText.slice(0, 2000)`))
			}
			if got := eval(`JSON.stringify([!document.querySelector("` + v.shown + `").hidden, document.querySelector("` + v.hidden + `").hidden, (document.querySelector("#nav a.current") || {}).textContent || ""])`); got != `[true,true,"`+strings.ToUpper(name[:1])+name[1:]+`"]` {
				t.Errorf("%s at %s: shown, hidden, current = %s", name, size.name, got)
			}
			if bad := eval(overflow); bad != "[]" {
				t.Errorf("%s at %s: %s", name, size.name, bad)
			}
			if size.name == "1600" && (name == "overview" || name == "outbound") {
				shot(t, ctx, "console-"+name+".png")
			}
			if size.name == "phone" && name == "overview" {
				shot(t, ctx, "console-phone.png")
			}
		}
	}
	// The Overview's charts count what this instance saw.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(c.Base()+"/ops/?view=overview"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#endpoint-charts figure").length >= 3`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatal(err)
	}
	legend := func(chart string) string {
		return eval(`(document.querySelector('figure[data-chart="` + chart + `"] .legend') || {}).textContent || ""`)
	}
	if l := legend("route ploomes"); !strings.Contains(l, "handed on 3") || !strings.Contains(l, "refused, held or failed 1") {
		t.Errorf("route ploomes' legend: %q", l)
	}
	if l := legend("route held"); !strings.Contains(l, "refused, held or failed 1") {
		t.Errorf("route held's legend: %q", l)
	}
	if l := legend("endpoint broken"); !strings.Contains(l, "retry 1") || !strings.Contains(l, "dead or gone 1") {
		t.Errorf("broken's legend: %q", l)
	}
	if l := legend("endpoint erp"); !strings.Contains(l, "delivered 1") {
		t.Errorf("erp's legend: %q", l)
	}
	if n := eval(`String(document.querySelectorAll('#route-charts figure[data-chart="route ploomes"] polyline, #route-charts figure[data-chart="route ploomes"] circle').length)`); n == "0" {
		t.Error("route ploomes' chart draws nothing")
	}
	// The 10-minute window, in the URL.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#charts button.win[data-window="10m"]`)),
		chromedp.Poll[chromedp.Void](`location.hash === "#overview/10m" && document.getElementById("instance").textContent.includes("10-second steps")`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("10-minute window: %v", err)
	}
	if tz := eval(`document.getElementById("tz").textContent`); tz == "" {
		t.Error("the time zone is not shown")
	}

	// Search by the published event's id: its story, with broken's answer and down's error.
	story := `document.querySelector("#event ol.timeline")`
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#search-id`), evID), chromedp.Click(chromedp.CSS(`#search button`)),
		chromedp.Poll[chromedp.Void](`!document.getElementById("event").hidden && `+story+`.querySelectorAll("li.attempt.bad").length === 4`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("search: %v\n%s", err, eval(`document.querySelector("main").innerText.slice(0, 2000)`))
	}
	if h := eval(`location.hash`); h != "#search/"+evID {
		t.Errorf("search hash = %q", h)
	}
	text := eval(story + `.innerText`)
	for _, want := range []string{"Queued for erp", "Queued for broken", "Queued for down", "HTTP 500", `{"error":"db down"`, "refused", "Attempt 2 to broken", "delivered", "dead"} {
		if !strings.Contains(text, want) {
			t.Errorf("the story lacks %q:\n%s", want, text)
		}
	}
	if bad := eval(overflow); bad != "[]" {
		t.Errorf("the story at 1280: %s", bad)
	}
	shot(t, ctx, "console-event.png")

	// From a dead letter's row to its event's story.
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?view=outbound"),
		chromedp.WaitVisible(chromedp.CSS(`#dead tbody tr a.story`)), chromedp.Click(chromedp.CSS(`#dead tbody tr a.story`)),
		chromedp.Poll[chromedp.Void](`location.hash.startsWith("#event/") && `+story+`.querySelectorAll("li.attempt").length === 5`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("a dead letter's story: %v", err)
	}
	// From a request's detail to its story.
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?view=inbound"), chromedp.WaitVisible(chromedp.CSS(`#requests tbody tr`))); err != nil {
		t.Fatal(err)
	}
	eval(`(() => { const s = document.getElementById("req-route"); s.value = "ploomes"; s.dispatchEvent(new Event("change")); return ""; })()`)
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelectorAll("#requests tbody tr").length === 4`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Click(chromedp.CSS(`#requests tbody tr:last-child`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail a.story`)), chromedp.Click(chromedp.CSS(`#req-detail a.story`)),
		chromedp.Poll[chromedp.Void](`!document.getElementById("event").hidden && `+story+`.innerText.includes("Received on ploomes")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("a request's story: %v", err)
	}
	// A malformed escape in a shared link opens the Overview instead of a dead page.
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?x=1#search/%E0%A4%A"),
		chromedp.Poll[chromedp.Void](`document.getElementById("updated").textContent.startsWith("updated") && !document.getElementById("charts").hidden`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("a malformed fragment: %v", err)
	}
	// Nothing found is said, not an empty page.
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?view=overview#search/no-such-id"),
		chromedp.Poll[chromedp.Void](`(document.querySelector("#search-results .found").textContent || "").includes("Nothing found for no-such-id")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("nothing found: %v", err)
	}
}

// shot saves a full-page screenshot for the docs (quality 100: a PNG).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	saveShot(t, name, png)
}
