package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const asyncMovedCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	webhook_receive totvs_crm {
		auth header X-Api-Key {env.TOTVS_KEY}
		mode async
		deliver_to {TARGET} {
			retry {RETRY}
		}
	}
}
`

// An async route whose deliver_to (or retry schedule) changes in a reload keeps its queue:
// the events it already answered 202 go to the new deliver_to. (Outside review: the
// internal endpoint was named after the target and its options, so a reload renamed it
// and stranded what was queued under the old name, listed nowhere.)
func TestAsyncRouteKeepsItsQueueAcrossDeliverToChange(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d/old", freePort(t)) // nothing listens
	be := startBackend(t)
	cfg := func(target, retry string) string {
		return strings.NewReplacer("{TARGET}", target, "{RETRY}", retry).Replace(asyncMovedCaddyfile)
	}
	five := strings.Repeat("5s ", 20)
	c := startCaddy(t, cfg(dead, five), totvsKey)
	ids := []string{"00000001-2222-4222-8222-222222222222", "00000002-2222-4222-8222-222222222222", "00000003-2222-4222-8222-222222222222"}
	for _, id := range ids {
		if code, _, rb := send(t, c.Base()+"/", totvsEvent(t, id), "X-Api-Key", "tk-456"); code != 202 {
			t.Fatalf("webhook %s: %d %s", id, code, rb)
		}
	}
	// The first attempts failed against the dead target; the next are 5 s away.
	testwait.Until(t, 30*time.Second, func() bool {
		var ds []deliveryView
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=pending", &ds)
		failed := 0
		for _, d := range ds {
			if len(d.Attempts) > 0 {
				failed++
			}
		}
		return failed == len(ids)
	}, "the three first attempts to fail")
	// A new retry schedule alone, then a new target: each reload keeps the queue.
	reload(t, c, cfg(dead, strings.Repeat("4s ", 20)))
	reload(t, c, cfg(be.URL+"/new", five))
	testwait.Until(t, 60*time.Second, func() bool { return be.Count() >= len(ids) }, "the queued events to reach the new deliver_to")
	seen := map[string]bool{}
	for _, r := range be.Got() {
		if r.Path != "/new" {
			t.Errorf("delivered to %s, not the new deliver_to", r.Path)
		}
		seen[r.Header.Get("X-Webhook-Event-Id")] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("event %s was not delivered after the reload (got %v)", id, seen)
		}
	}
}

const replayMovedCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /{NEWPATH} {
		webhook_receive {
			name newroute
			auth none
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /new {
		webhook_receive {
			name other
			auth header X-Other {env.OTHER_SECRET}
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
}
`

// A replay goes only to the route that logged the request: when a reload made its URI
// reach another route (whose authentication a replay would skip), or none, the replay is
// refused and nothing is handed on. (Outside review: it was handed to the other route
// without its credential and answered 200; with no route, 200 with an empty outcome.)
func TestReplayRefusedWhenItsURIReachesAnotherRoute(t *testing.T) {
	be := startBackend(t)
	cfg := func(newPath string) string {
		return strings.NewReplacer("{NEWPATH}", newPath, "{BACKEND}", be.Addr).Replace(replayMovedCaddyfile)
	}
	c := startCaddy(t, cfg("new"), "OTHER_SECRET=othersecret")
	if code, _, rb := send(t, c.Base()+"/new", []byte(`{"id":"n1"}`)); code != 200 {
		t.Fatalf("webhook: %d %s", code, rb)
	}
	var recs []struct {
		ID string `json:"id"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound/newroute/requests", &recs)
	if len(recs) != 1 {
		t.Fatalf("newroute logged %d requests", len(recs))
	}
	before := be.Count()
	// /new now reaches route other; newroute moved to /moved.
	reload(t, c, cfg("moved"))
	code, m := adminPost(t, c.AdminURL()+"/webhooks/inbound/newroute/requests/"+recs[0].ID+"/replay?force=true")
	if code != 409 || !strings.Contains(fmt.Sprint(m["detail"]), `now reaches route "other"`) {
		t.Errorf("replay onto another route: %d %v", code, m)
	}
	// No route at all reaches /new.
	reload(t, c, strings.Replace(cfg("moved"), "handle /new {", "handle /elsewhere {", 1))
	code, m = adminPost(t, c.AdminURL()+"/webhooks/inbound/newroute/requests/"+recs[0].ID+"/replay?force=true")
	if code != 409 || !strings.Contains(fmt.Sprint(m["detail"]), "reaches no webhook_receive route") {
		t.Errorf("replay onto no route: %d %v", code, m)
	}
	if n := be.Count(); n != before {
		t.Errorf("the backend got %d requests from refused replays", n-before)
	}
	// The route at its own URI replays as before.
	reload(t, c, cfg("new"))
	if code, m := adminPost(t, c.AdminURL()+"/webhooks/inbound/newroute/requests/"+recs[0].ID+"/replay?force=true"); code != 200 || m["outcome"] != "accepted" {
		t.Errorf("replay at its own URI: %d %v", code, m)
	}
}

// A Redis that refuses the configured password is a store that cannot be used: the admin
// API answers 503 store_unavailable, as the webhooks do (outside review: 500 store_error
// with WRONGPASS, while the data path answered 503).
func TestRedisWrongPasswordIsUnavailableEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	if err := srv.Client(t).ConfigSet(context.Background(), "requirepass", "SuperRedisPw").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := `{
	{GLOBAL}
	webhooks {
		store redis redis://default:WrongPw@` + srv.Addr() + `/0
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive totvs_crm {
		auth header X-Api-Key {env.TOTVS_KEY}
	}
	respond 200
}
`
	c := startCaddy(t, cfg, totvsKey)
	if code, _, rb := send(t, c.Base()+"/", totvsEvent(t, "00000009-2222-4222-8222-222222222222"), "X-Api-Key", "tk-456"); code != 503 {
		t.Errorf("webhook: %d %s", code, rb)
	}
	for _, path := range []string{"/webhooks/inbound/totvs_crm/requests", "/webhooks/inbound/totvs_crm/order?key=a", "/webhooks/deliveries"} {
		code, m := adminDo(t, c, "GET", path)
		if code != 503 || !strings.HasSuffix(fmt.Sprint(m["type"]), "/store_unavailable") || strings.Contains(fmt.Sprint(m), "WrongPw") {
			t.Errorf("GET %s: %d %v", path, code, m)
		}
	}
}

const removedEndpointCaddyfile = `{
	{GLOBAL}
	webhooks {
		{ENDPOINT}
	}
}
http://127.0.0.1:{PORT} {
	webhook_publish
}
`

// An endpoint removed by a reload keeps its queued deliveries in the store, and the admin
// API still lists them by the endpoint's name (outside review: ?endpoint=gone was a 404,
// so what was queued for it could not be seen).
func TestRemovedEndpointsDeliveriesStayListed(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d/", freePort(t))
	endpoint := "endpoint gone {\n\t\t\turl " + dead + "\n\t\t\tevents gone.*\n\t\t\tallow_private\n\t\t\tretry 1h\n\t\t}"
	c := startCaddy(t, strings.Replace(removedEndpointCaddyfile, "{ENDPOINT}", endpoint, 1))
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, c.Base()+"/", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Webhook-Event-Type", "gone.x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("publish: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	reload(t, c, strings.Replace(removedEndpointCaddyfile, "{ENDPOINT}", "", 1))
	var ds []deliveryView
	getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint=gone", &ds)
	if len(ds) != 3 {
		t.Fatalf("the removed endpoint's deliveries: %d listed, want 3", len(ds))
	}
	if code, m := adminDo(t, c, "GET", "/webhooks/deliveries?endpoint=never"); code != 404 || m["detail"] == nil {
		t.Errorf("a name nothing was ever queued for: %d %v", code, m)
	}
}
