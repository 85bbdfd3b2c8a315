package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// quiesce loads a fresh config (so the running config holds no delivery connections yet:
// the count does not depend on which config happened to deliver last) with traffic
// stopped, and closes the test's idle client connections.
func quiesce(t *testing.T, c *Caddy, quiet string) {
	t.Helper()
	reload(t, c, quiet)
	http.DefaultClient.CloseIdleConnections()
}

// usage returns Caddy's goroutine count (from the admin pprof endpoint) and open file
// descriptors (sockets and files) now.
func usage(t *testing.T, c *Caddy) (goroutines, fds int) {
	t.Helper()
	resp, err := http.Get(c.AdminURL() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := goroutineTotal.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no goroutine total in %.200s", b)
	}
	goroutines, _ = strconv.Atoi(string(m[1]))
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	return goroutines, len(ents)
}

// settledUsage is usage once the previous configs have wound down: the reading taken when
// the goroutine count has not fallen for ten readings in a row (a reload's old workers
// only ever go away, so the count falls until it is settled), within 30 s.
func settledUsage(t *testing.T, c *Caddy) (goroutines, fds int) {
	t.Helper()
	start := time.Now()
	goroutines, fds = usage(t, c)
	same := 0
	testwait.Poll(30*time.Second, func() bool {
		g, f := usage(t, c)
		if g < goroutines {
			goroutines, fds, same = g, f, 0
			return false
		}
		same++
		return same >= 10
	})
	t.Logf("settled at %d goroutines, %d fds after %v", goroutines, fds, time.Since(start))
	return goroutines, fds
}

// Reloading the config 20 times under light traffic leaves goroutines and connections
// flat: stores are shared through the usage pool, workers stop with their config.
func TestReloadTwentyTimesLeaksNothing(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			storeLine := "store embedded"
			if store == "redis" {
				storeLine = "store redis " + redistest.Start(t).URL()
			}
			sink := startPathSink(t)
			cfg := func(i int) string {
				s := strings.ReplaceAll(adminCaddyfile, "{SINK}", sink.URL)
				s = strings.Replace(s, "store embedded", storeLine, 1)
				// Change something on every load so each one is a real new config.
				return strings.Replace(s, "retry 50ms", fmt.Sprintf("retry %dms", 50+i), 1)
			}
			c := startCaddy(t, cfg(0), totvsKey)
			// Subscriptions too: each config's manager and their runners must go with it.
			for i := range 3 {
				if code, b := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", fmt.Sprintf(`{"url":"https://example.com/%d","events":["never.%d"]}`, i, i)); code != 201 {
					t.Fatalf("create: %d %v", code, b)
				}
			}

			var stop atomic.Bool
			var sent, failed atomic.Int64
			traffic := func() *sync.WaitGroup {
				stop.Store(false)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						ev := totvsEvent(t, fmt.Sprintf("%08d-1111-4111-8111-111111111111", i))
						for _, r := range []struct {
							url  string
							body []byte
							hdr  []string
						}{
							{c.Base() + "/totvs", ev, []string{"X-Api-Key", "tk-456"}},
							{c.Base() + "/publish", []byte(`{"n":1}`), []string{"Webhook-Event-Type", "order.paid"}},
						} {
							req, _ := http.NewRequest("POST", r.url, strings.NewReader(string(r.body)))
							req.Header.Set("Content-Type", "application/json")
							req.Header.Set(r.hdr[0], r.hdr[1])
							resp, err := http.DefaultClient.Do(req)
							sent.Add(1)
							if err != nil {
								failed.Add(1) // a connection closed by a reload
							} else {
								_, _ = io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
							}
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
				return &wg
			}

			// Warm up with 10 reloads under traffic (connection pools reach their working size),
			// then measure, reload 20 more times under traffic, and measure again: a leak grows
			// with every reload, a pool does not.
			wg := traffic()
			for i := 1; i <= 10; i++ {
				reload(t, c, cfg(i))
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			quiesce(t, c, cfg(100))
			g0, f0 := settledUsage(t, c)
			sent.Store(0)
			failed.Store(0)

			wg = traffic()
			for i := 11; i <= 30; i++ {
				reload(t, c, cfg(i))
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			quiesce(t, c, cfg(101))
			t1 := time.Now()
			// A leak stays; what the last configs still wind down goes: wait (on a loaded
			// machine, as long as it takes) until the counts are back within the bounds,
			// then assert on the last reading.
			var g1, f1 int
			testwait.Poll(30*time.Second, func() bool {
				g1, f1 = usage(t, c)
				return g1 <= g0+4 && f1 <= f0+5
			})
			t.Logf("final reading after %v", time.Since(t1))
			t.Logf("%s: goroutines %d -> %d, open fds %d -> %d after 20 reloads (%d requests, %d cut by reloads)",
				store, g0, g1, f0, f1, sent.Load(), failed.Load())
			if g1 > g0+4 {
				if resp, err := http.Get(c.AdminURL() + "/debug/pprof/goroutine?debug=1"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("goroutines now:\n%s", b)
				}
				t.Errorf("goroutines grew from %d to %d over 20 reloads", g0, g1)
			}
			if f1 > f0+5 { // a Redis pool may grow by a few connections; a leak grows by one per reload
				t.Errorf("open file descriptors grew from %d to %d over 20 reloads", f0, f1)
			}
			if failed.Load() > sent.Load()/10 {
				t.Errorf("%d of %d requests failed during reloads", failed.Load(), sent.Load())
			}
			record(t, "20 config reloads under light traffic, "+store+" store",
				fmt.Sprintf("%d requests, %d cut (in flight on a closed connection); goroutines %d → %d, open fds %d → %d", sent.Load(), failed.Load(), g0, g1, f0, f1),
				"0 accepted events")
		})
	}
}
