package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
