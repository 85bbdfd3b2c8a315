package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

// The fault suite: each case is bounded in time and traffic, on loopback only. Each one
// records what it measured with record(); with HOOKGATE_FAULT_REPORT set, the rows are
// appended to that file (the README's table is the last run's).

var reportMu sync.Mutex

// record notes one row of the fault table: what was done, what Hookgate answered, and
// what was lost.
func record(t *testing.T, fault, answered, lost string) {
	t.Logf("FAULT | %s | %s | %s", fault, answered, lost)
	path := os.Getenv("HOOKGATE_FAULT_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("fault report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "| %s | %s | %s |\n", fault, answered, lost)
}

func statusSummary(counts map[int]int) string {
	var codes []int
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", counts[c], c))
	}
	return strings.Join(parts, ", ")
}

// Redis is killed while webhooks arrive, then comes back. With on_store_error reject the
// senders only see 200 (handed on) or 503 (retry later); no 2xx is ever given for an event
// that did not reach the backend; service resumes without a restart.
func TestFaultRedisKilledUnderInboundLoad(t *testing.T) {
	for _, mode := range []string{"reject", "accept"} {
		t.Run(mode, func(t *testing.T) {
			rs := redistest.Start(t)
			be := startBackend(t)
			c := startCaddy(t, dedupeConfig("store redis "+rs.URL(), be.Addr, "on_store_error "+mode), totvsKey)

			var mu sync.Mutex
			counts := map[int]int{}
			var ok2xx []string
			var next, answered atomic.Int64
			var stop atomic.Bool
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						id := fmt.Sprintf("%08d-3333-4333-8333-333333333333", next.Add(1))
						code, _, _ := send(t, c.Base()+"/totvs", totvsEvent(t, id), "X-Api-Key", "tk-456")
						mu.Lock()
						counts[code]++
						if code >= 200 && code < 300 {
							ok2xx = append(ok2xx, id)
						}
						mu.Unlock()
						answered.Add(1)
					}
				}()
			}
			// moreAnswered waits until the senders have had n more answers.
			moreAnswered := func(n int64, what string) {
				t.Helper()
				at := answered.Load()
				testwait.Until(t, 60*time.Second, func() bool { return answered.Load() >= at+n }, what)
			}
			moreAnswered(50, "50 answers with Redis up")
			rs.Stop()
			down := time.Now()
			// The outage lasts until the senders have been answered through it (and, when
			// the route rejects, until it has been seen rejecting).
			moreAnswered(500, "500 answers with Redis down")
			if mode == "reject" {
				testwait.Until(t, 60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return counts[503] > 0 }, "a 503 with Redis down")
			}
			rs.Restart()
			up := time.Now()
			// Service is back when dedupe works again: a fresh event is handed on, and its
			// copy is answered as a duplicate.
			var recovered time.Duration
			i := 0
			testwait.Poll(60*time.Second, func() bool {
				i++
				ev := totvsEvent(t, fmt.Sprintf("%08d-4444-4444-8444-444444444444", i))
				code, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
				code2, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
				if code == 200 && code2 == 200 && h.Get("Webhook-Duplicate") == "true" {
					recovered = time.Since(up)
					return true
				}
				return false
			})
			moreAnswered(50, "50 answers after the recovery")
			stop.Store(true)
			wg.Wait()
			outage := up.Sub(down)

			got := map[string]bool{}
			for _, r := range be.Got() {
				var ev struct{ EventID string }
				_ = json.Unmarshal(r.Body, &ev)
				got[ev.EventID] = true
			}
			lost := 0
			for _, id := range ok2xx {
				if !got[id] {
					lost++
				}
			}
			for code := range counts {
				if code != 200 && !(mode == "reject" && code == 503) {
					t.Errorf("status %d answered %d times (only 200%s allowed)", code, counts[code], map[bool]string{true: " and 503", false: ""}[mode == "reject"])
				}
			}
			if mode == "reject" && counts[503] == 0 {
				t.Error("no 503 while Redis was down: the fault did not happen")
			}
			if lost > 0 {
				t.Errorf("%d events answered 2xx never reached the backend", lost)
			}
			if recovered == 0 {
				t.Fatal("service did not recover within 60 s of Redis coming back")
			}
			if strings.Contains(c.Log(), "panic") {
				t.Fatalf("panic in the log:\n%s", c.Log())
			}
			record(t, fmt.Sprintf("Redis killed for %v under inbound load (8 senders), on_store_error %s", outage.Round(100*time.Millisecond), mode),
				statusSummary(counts)+fmt.Sprintf("; 200 again %v after Redis restarted, no Caddy restart", recovered.Round(10*time.Millisecond)),
				fmt.Sprintf("%d of %d events answered 2xx not handed on", lost, len(ok2xx)))
		})
	}
}

const backendFaultCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		reverse_proxy {BACKEND} {
			transport http {
				dial_timeout 1s
				response_header_timeout 500ms
			}
		}
	}
}
`

// The backend is down (502) or too slow (504): the claim is released, so the sender's
// retry is handed on once the backend is back, and only once.
func TestFaultBackendDownOrSlow(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		c := startCaddy(t, strings.Replace(backendFaultCaddyfile, "{BACKEND}", addr, 1), totvsKey)
		ev := totvsEvent(t, "50505050-5050-4050-8050-505050505050")
		first, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		be := startBackendAt(t, addr)
		retry, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		again, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		if first != 502 || retry != 200 || again != 200 || h.Get("Webhook-Duplicate") != "true" || be.Count() != 1 {
			t.Fatalf("down: %d, retry %d, third %d dup=%q, backend got %d", first, retry, again, h.Get("Webhook-Duplicate"), be.Count())
		}
		record(t, "backend down (connection refused), sync mode",
			"502; the retry after it came back 200; a third copy 200 Webhook-Duplicate",
			"nothing: handed on exactly once")
	})
	t.Run("slow", func(t *testing.T) {
		be := startBackend(t)
		be.delay = 1500 * time.Millisecond
		c := startCaddy(t, strings.Replace(backendFaultCaddyfile, "{BACKEND}", be.Addr, 1), totvsKey)
		ev := totvsEvent(t, "51515151-5151-4151-8151-515151515151")
		start := time.Now()
		first, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		took := time.Since(start)
		be.mu.Lock()
		be.delay = 0
		be.mu.Unlock()
		retry, _, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		again, h, _ := send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
		if first != 504 || took > 1400*time.Millisecond || retry != 200 || again != 200 || h.Get("Webhook-Duplicate") != "true" {
			t.Fatalf("slow: %d after %v, retry %d, third %d dup=%q", first, took, retry, again, h.Get("Webhook-Duplicate"))
		}
		// The backend saw the timed-out request too: Caddy cannot take back what it sent.
		if be.Count() != 2 {
			t.Fatalf("backend got %d requests, want 2 (the timed-out one and the retry)", be.Count())
		}
		record(t, "backend slower than response_header_timeout (500 ms), sync mode",
			fmt.Sprintf("504 after %v; the retry 200; a third copy 200 Webhook-Duplicate", took.Round(10*time.Millisecond)),
			"nothing; the retry is handed on once (the backend also saw the request that timed out)")
	})
}

// startBackendAt starts a recording backend on a given address.
func startBackendAt(t *testing.T, addr string) *Backend {
	var l net.Listener
	var err error
	if !testwait.Poll(10*time.Second, func() bool { l, err = net.Listen("tcp", addr); return err == nil }) {
		t.Fatal(err)
	}
	b := newBackend(l)
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}
