package integration

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const dedupeCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
			{EXTRA}
		}
		reverse_proxy {BACKEND}
	}
}
`

func dedupeConfig(store, backend, extra string) string {
	return strings.NewReplacer("{STORE}", store, "{BACKEND}", backend, "{EXTRA}", extra).Replace(dedupeCaddyfile)
}

// totvsEvent is the TOTVS sample with event id id, about a record of its own (the row id is
// the event id too), as TOTVS traffic across many records is: the stale-event guard (on by
// default for totvs_crm) serializes the events of one record. totvsAt makes events of one
// record.
func totvsEvent(t testing.TB, id string) []byte {
	b := sample(t, "totvs_crm/opportunity-won.json")
	s := strings.Replace(string(b), "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20", id, 1)
	return []byte(strings.Replace(s, "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", id, 1))
}

const totvsKey = "TOTVS_KEY=tk-456"

func TestTwoInstancesOneRedisDeliverOnce(t *testing.T) {
	rs := redistest.Start(t)
	be := startBackend(t)
	cfg := dedupeConfig("store redis "+rs.URL(), be.Addr, "")
	a := startCaddy(t, cfg, totvsKey)
	b := startCaddy(t, cfg, totvsKey)

	ev := totvsEvent(t, "11111111-1111-4111-8111-111111111111")
	code, _, body := send(t, a.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	if code != 200 {
		t.Fatalf("first send to A: %d %s", code, body)
	}
	code, h, _ := send(t, b.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	if code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("same event to B: %d dup=%q", code, h.Get("Webhook-Duplicate"))
	}
	if be.Count() != 1 {
		t.Fatalf("backend got the event %d times across two instances, want 1", be.Count())
	}

	// 50 concurrent copies of one new event, spread over both instances: once.
	be.mu.Lock()
	be.delay = 100 * time.Millisecond
	be.mu.Unlock()
	ev2 := totvsEvent(t, "22222222-2222-4222-8222-222222222222")
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			inst := a
			if i%2 == 1 {
				inst = b
			}
			codes[i], _, _ = send(t, inst.Base()+"/totvs", ev2, "X-Api-Key", "tk-456")
		}(i)
	}
	wg.Wait()
	if be.Count() != 2 {
		t.Fatalf("50 concurrent copies reached the backend %d times, want once", be.Count()-1)
	}
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[200]+count[409] != 50 || count[200] < 1 {
		t.Fatalf("answers to the copies: %v (want 200 or 409 each)", count)
	}
}

func TestBackendFailureThenRetryDeliveredOnce(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			be := startBackend(t)
			be.SetStatus(func(n int) int {
				if n == 1 {
					return 503
				}
				return 200
			})
			storeLine := "store embedded"
			if store == "redis" {
				storeLine = "store redis " + redistest.Start(t).URL()
			}
			c := startCaddy(t, dedupeConfig(storeLine, be.Addr, ""), totvsKey)
			ev := totvsEvent(t, "33333333-3333-4333-8333-333333333333")
			if code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 503 {
				t.Fatalf("backend 503 should reach the sender: %d", code)
			}
			if code, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Duplicate") != "" {
				t.Fatalf("retry after the failure: %d dup=%q", code, h.Get("Webhook-Duplicate"))
			}
			if code, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
				t.Fatalf("third send: %d dup=%q", code, h.Get("Webhook-Duplicate"))
			}
			if be.Count() != 2 {
				t.Fatalf("backend saw %d requests, want 2 (the failed one and the retry)", be.Count())
			}
		})
	}
}

func TestRedisDownRejectsThenRecoversWithoutRestart(t *testing.T) {
	rs := redistest.Start(t)
	be := startBackend(t)
	c := startCaddy(t, dedupeConfig("store redis "+rs.URL(), be.Addr, ""), totvsKey)
	ev := totvsEvent(t, "44444444-4444-4444-8444-444444444444")
	if code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 {
		t.Fatalf("with Redis up: %d", code)
	}
	rs.Stop()
	ev2 := totvsEvent(t, "55555555-5555-4555-8555-555555555555")
	code, h, body := send(t, c.Base()+"/totvs", ev2, "X-Api-Key", "tk-456")
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("with Redis down: %d Retry-After=%q", code, h.Get("Retry-After"))
	}
	problem(t, h, body)
	if be.Count() != 1 {
		t.Fatal("a request reached the backend while the store was down")
	}
	rs.Restart()
	testwait.Poll(30*time.Second, func() bool {
		code, _, _ = send(t, c.Base()+"/totvs", ev2, "X-Api-Key", "tk-456")
		return code == 200
	})
	if code != 200 || be.Count() != 2 {
		t.Fatalf("after Redis restarted: %d, backend %d", code, be.Count())
	}
}

func TestRedisDownAcceptPassesThrough(t *testing.T) {
	rs := redistest.Start(t)
	be := startBackend(t)
	c := startCaddy(t, dedupeConfig("store redis "+rs.URL(), be.Addr, "on_store_error accept"), totvsKey)
	rs.Stop()
	ev := totvsEvent(t, "66666666-6666-4666-8666-666666666666")
	if code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 || be.Count() != 1 {
		t.Fatalf("accept with Redis down: %d, backend %d", code, be.Count())
	}
	if !strings.Contains(c.Log(), "webhook store error") {
		t.Fatal("no warning logged for the store error")
	}
}

func TestEmbeddedStoreSurvivesRestart(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, dedupeConfig("store embedded", be.Addr, ""), totvsKey)
	ev := totvsEvent(t, "77777777-7777-4777-8777-777777777777")
	if code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 {
		t.Fatalf("first: %d", code)
	}
	c.Restart()
	code, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	if code != 200 || h.Get("Webhook-Duplicate") != "true" || be.Count() != 1 {
		t.Fatalf("after restart: %d dup=%q backend=%d", code, h.Get("Webhook-Duplicate"), be.Count())
	}
	if _, err := os.Stat(c.DataDir + "/caddy/hookgate/store.db"); err != nil {
		t.Fatalf("store file not in Caddy's data directory: %v", err)
	}
}

func TestReloadKeepsEmbeddedStore(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, dedupeConfig("store embedded", be.Addr, ""), totvsKey)
	ev := totvsEvent(t, "88888888-8888-4888-8888-888888888888")
	if code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456"); code != 200 {
		t.Fatalf("first: %d", code)
	}
	// Reload a changed config through the admin API: the store file stays open and shared.
	cfg := dedupeConfig("store embedded", be.Addr, "dedupe 12h")
	cfg = fillConfig(cfg, c.Port, c.Admin, "")
	out, err := runCmd(caddyBin, "adapt", "--config", writeTemp(t, cfg), "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("adapt: %v %s", err, out)
	}
	resp, err := postJSON(c.AdminURL()+"/load", jsonOnly(out))
	if err != nil || resp != 200 {
		t.Fatalf("reload: %d %v\n%s", resp, err, c.Log())
	}
	// The old server closed its connections; do not race a reused one.
	http.DefaultClient.CloseIdleConnections()
	code, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	if code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("after reload: %d dup=%q\n%s", code, h.Get("Webhook-Duplicate"), c.Log())
	}
}
