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
		{DEDUPE}
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
			c := startCaddy(t, strings.NewReplacer("{STORE}", line, "{BACKEND}", be.URL+"/in", "{DEDUPE}", "").Replace(replayAsyncCaddyfile))
			// A sender's own X-Hookgate-Replay-Of does not mark its webhook as a replay.
			if code, _, rb := send(t, c.Base()+"/", []byte(`{"id":"r1","n":1}`), "X-Hookgate-Replay-Of", "req_forged"); code != 202 {
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
				if want := []string{"", recs[0].ID}[i]; r.Header.Get("X-Hookgate-Replay-Of") != want {
					t.Errorf("delivery %d carries X-Hookgate-Replay-Of %q, want %q", i, r.Header.Get("X-Hookgate-Replay-Of"), want)
				}
			}
			time.Sleep(300 * time.Millisecond) // nothing more arrives
			if n := be.Count(); n != 2 {
				t.Errorf("the backend got %d deliveries, want 2 (the webhook and its forced replay)", n)
			}
		})
	}
}

// A repeat of a webhook after its route's dedupe window is a new event by the route's own
// rule: answered 202 and delivered again, on either store. (Outside review: on Redis the
// queued id, derived from the route, the event id and the body, mapped the repeat to the
// delivery already made or dead-lettered: 202 "queued", nothing delivered.)
func TestRepeatAfterTheDedupeWindowIsDeliveredAgain(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line := "store embedded"
			if store == "redis" {
				line = "store redis redis://" + redistest.Start(t).Addr() + "/0"
			}
			be := startBackend(t)
			c := startCaddy(t, strings.NewReplacer("{STORE}", line, "{BACKEND}", be.URL+"/in", "{DEDUPE}", "dedupe 1s").Replace(replayAsyncCaddyfile))
			body := []byte(`{"id":"w1","v":1}`)
			if code, _, rb := send(t, c.Base()+"/", body); code != 202 {
				t.Fatalf("webhook: %d %s", code, rb)
			}
			if code, h, _ := send(t, c.Base()+"/", body); code != 200 || h.Get("Webhook-Duplicate") != "true" {
				t.Fatalf("a copy within the window: %d duplicate=%q", code, h.Get("Webhook-Duplicate"))
			}
			testwait.Until(t, 20*time.Second, func() bool { return be.Count() == 1 }, "the webhook's delivery")
			time.Sleep(1100 * time.Millisecond) // past the window
			if code, _, rb := send(t, c.Base()+"/", body); code != 202 {
				t.Fatalf("the repeat after the window: %d %s", code, rb)
			}
			testwait.Until(t, 20*time.Second, func() bool { return be.Count() == 2 }, "the repeat's delivery")
			got := be.Got()
			if got[0].Header.Get("Webhook-Id") == got[1].Header.Get("Webhook-Id") {
				t.Errorf("the repeat was delivered under the first event's Webhook-Id %s", got[0].Header.Get("Webhook-Id"))
			}
		})
	}
}

// Only a replay made in the process marks a request as one: a sender's own
// X-Hookgate-Replay-Of does not reach a sync route's backend either. (Outside review, on
// async routes: it was queued and delivered.)
func TestSendersReplayHeaderIsDropped(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	webhook_receive {
		name syncreplay
		auth none
		event_id json:/id
	}
	reverse_proxy `+be.Addr+`
}
`)
	if code, _, rb := send(t, c.Base()+"/", []byte(`{"id":"s1"}`), "X-Hookgate-Replay-Of", "req_forged"); code != 200 {
		t.Fatalf("webhook: %d %s", code, rb)
	}
	if got := be.Got(); len(got) != 1 || got[0].Header.Get("X-Hookgate-Replay-Of") != "" {
		t.Fatalf("the backend got %d requests, the first with X-Hookgate-Replay-Of %q", len(got), got[0].Header.Get("X-Hookgate-Replay-Of"))
	}
}
