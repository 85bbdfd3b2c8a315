package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const replayAsyncCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive {
		name asyncreplay
		auth none
		event_id json:/id
		mode async
		deliver_to {BACKEND}
	}
}
`

// A forced replay of an async route's request is queued and delivered again, on either
// store; a replay that is not forced is a duplicate. (Found while measuring: a deduping
// route's queued id was derived from the route, the event id and the body, so the forced
// replay mapped to the event already queued: answered 202 "queued", delivered nothing.)
func TestForcedReplayOfAnAsyncRouteIsDeliveredAgain(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line := "store embedded"
			if store == "redis" {
				line = "store redis redis://" + redistest.Start(t).Addr() + "/0"
			}
			be := startBackend(t)
			c := startCaddy(t, strings.NewReplacer("{STORE}", line, "{BACKEND}", be.URL+"/in").Replace(replayAsyncCaddyfile))
			if code, _, rb := send(t, c.Base()+"/", []byte(`{"id":"r1","n":1}`)); code != 202 {
				t.Fatalf("webhook: %d %s", code, rb)
			}
			testwait.Until(t, 20*time.Second, func() bool { return be.Count() == 1 }, "the webhook's delivery")
			var recs []struct {
				ID string `json:"id"`
			}
			testwait.Until(t, 10*time.Second, func() bool { // Redis' log is written in the background
				getJSON(t, c.AdminURL()+"/webhooks/inbound/asyncreplay/requests", &recs)
				return len(recs) == 1
			}, "the request's record in the log")
			replay := c.AdminURL() + "/webhooks/inbound/asyncreplay/requests/" + recs[0].ID + "/replay"
			if code, m := adminPost(t, replay); code != 200 || m["outcome"] != "duplicate" {
				t.Fatalf("a replay without force: %d %v", code, m)
			}
			code, m := adminPost(t, replay+"?force=true")
			if code != 200 || m["outcome"] != "queued" || m["status"] != float64(202) {
				t.Fatalf("a forced replay: %d %v", code, m)
			}
			testwait.Until(t, 20*time.Second, func() bool { return be.Count() >= 2 }, "the forced replay's delivery")
			for i, r := range be.Got() {
				if r.Header.Get("X-Webhook-Event-Id") != "r1" || !strings.Contains(string(r.Body), `"n":1`) {
					t.Errorf("delivery %d: event %q, body %s", i, r.Header.Get("X-Webhook-Event-Id"), r.Body)
				}
			}
			time.Sleep(300 * time.Millisecond) // nothing more arrives
			if n := be.Count(); n != 2 {
				t.Errorf("the backend got %d deliveries, want 2 (the webhook and its forced replay)", n)
			}
		})
	}
}
