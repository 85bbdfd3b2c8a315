package integration

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const breakerCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
		endpoint app {
			url {SINK}/app
			events order.*
			retry 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s
			concurrency 1
			allow_private
			breaker {
				failures 3
				cooldown 2s
				max_cooldown 4s
			}
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
}
`

// sickSink answers 503 while down and 200 once up, and keeps when each request came and
// the bodies it accepted, in order.
type sickSink struct {
	*Backend
	down atomic.Bool
	mu   sync.Mutex
	ok   []string
	at   []time.Time
}

func startSickSink(t *testing.T) *sickSink {
	s := &sickSink{Backend: startBackend(t)}
	s.down.Store(true)
	s.SetStatus(func(n int) int {
		got := s.Got()[n-1]
		s.mu.Lock()
		defer s.mu.Unlock()
		s.at = append(s.at, got.At)
		if s.down.Load() {
			return 503
		}
		s.ok = append(s.ok, string(got.Body))
		return 200
	})
	return s
}

func (s *sickSink) hits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func (s *sickSink) accepted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ok...)
}

type breakerState struct {
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Manual  bool   `json:"manual"`
	ProbeAt string `json:"probe_at"`
}

func breakerOf(t *testing.T, c *Caddy, endpoint string) (breakerState, int64, int64) {
	t.Helper()
	var eps []struct {
		Name    string       `json:"name"`
		Pending int64        `json:"pending"`
		Dead    int64        `json:"dead"`
		Breaker breakerState `json:"breaker"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/endpoints", &eps)
	for _, e := range eps {
		if e.Name == endpoint {
			return e.Breaker, e.Pending, e.Dead
		}
	}
	t.Fatalf("no endpoint %s", endpoint)
	return breakerState{}, 0, 0
}

// settledBreaker waits until the endpoint's breaker is closed with nothing pending (the
// sink answers before the result is written) and fails if anything is dead.
func settledBreaker(t *testing.T, c *Caddy, endpoint string) {
	t.Helper()
	var st breakerState
	var pending, dead int64
	if !testwait.Poll(10*time.Second, func() bool {
		st, pending, dead = breakerOf(t, c, endpoint)
		return st.State == "closed" && pending == 0
	}) || dead != 0 {
		t.Fatalf("after the recovery: %+v, %d pending, %d dead", st, pending, dead)
	}
}

// Through the built Caddy, on both stores: a sink that fails opens the breaker after the
// threshold (3 here); while it is open the sink sees only probes (one per cooldown, the
// cooldown doubling) where the retry schedule alone would have made dozens of attempts;
// when it recovers the next probe closes the breaker and every pending event arrives
// once, oldest first; nothing is dead-lettered. The state is in the admin API, the
// metrics and the log; an operator holds it open and closes it by hand.
func TestBreakerThroughCaddy(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			sink := startSickSink(t)
			cfg := strings.NewReplacer("{STORE}", storeLine(t, store), "{SINK}", sink.URL).Replace(breakerCaddyfile)
			c := startCaddy(t, cfg)
			var want []string
			for i := range 10 {
				body := fmt.Sprintf(`{"n":%d}`, i)
				want = append(want, body)
				if n := publish(t, c, "order.created", body); n != 1 {
					t.Fatalf("published to %d endpoints", n)
				}
			}
			testwait.Until(t, 15*time.Second, func() bool {
				b, _, _ := breakerOf(t, c, "app")
				return b.State == "open"
			}, "the breaker to open")
			if n := sink.hits(); n != 3 {
				t.Fatalf("%d attempts before the breaker opened, want 3", n)
			}
			b, pending, dead := breakerOf(t, c, "app")
			if !strings.Contains(b.Reason, "3 consecutive failed attempts (last: HTTP 503)") || b.ProbeAt == "" || pending != 10 || dead != 0 {
				t.Fatalf("open: %+v, %d pending, %d dead", b, pending, dead)
			}
			// 6 seconds open: probes at 2s and (doubled) 6s; without the breaker, ten
			// events on a 1s schedule would be about 60 attempts.
			time.Sleep(6500 * time.Millisecond)
			probes := sink.hits() - 3
			if probes < 1 || probes > 2 {
				t.Fatalf("%d attempts in 6.5s while open, want the probes only (1 or 2)", probes)
			}
			m := string(metricsText(t, c))
			if !strings.Contains(m, `caddy_webhook_breaker_transitions_total{endpoint="app",to="open"}`) ||
				!(strings.Contains(m, `caddy_webhook_breaker_state{endpoint="app",state="open"} 1`) || strings.Contains(m, `caddy_webhook_breaker_state{endpoint="app",state="half_open"} 1`)) {
				t.Fatalf("metrics:\n%s", grepLines(m, "breaker"))
			}
			if !strings.Contains(c.Log(), "circuit breaker opened") || !strings.Contains(c.Log(), "circuit breaker probe failed") {
				t.Fatalf("no log line per transition:\n%s", grepLines(c.Log(), "breaker"))
			}

			sink.down.Store(false)
			testwait.Until(t, 20*time.Second, func() bool { return len(sink.accepted()) == 10 }, "the backlog to drain")
			if got := sink.accepted(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("delivered %v, want each once, oldest first %v", got, want)
			}
			settledBreaker(t, c, "app")
			if !strings.Contains(c.Log(), "circuit breaker closed") {
				t.Fatalf("no close line:\n%s", grepLines(c.Log(), "breaker"))
			}

			// By hand: held open (no probe however long), then closed.
			if code, ans := call(t, "POST", c.AdminURL()+"/webhooks/endpoints/app/breaker-open", ""); code != 200 {
				t.Fatalf("breaker-open: %d %v", code, ans)
			}
			publish(t, c, "order.created", `{"n":10}`)
			time.Sleep(3 * time.Second)
			if b, pending, _ := breakerOf(t, c, "app"); b.State != "open" || !b.Manual || b.ProbeAt != "" || pending != 1 || len(sink.accepted()) != 10 {
				t.Fatalf("held by hand: %+v, %d pending, %d delivered", b, pending, len(sink.accepted()))
			}
			if code, ans := call(t, "POST", c.AdminURL()+"/webhooks/endpoints/app/breaker-close", ""); code != 200 {
				t.Fatalf("breaker-close: %d %v", code, ans)
			}
			testwait.Until(t, 10*time.Second, func() bool { return len(sink.accepted()) == 11 }, "the delivery after the close")
			if code, _ := call(t, "POST", c.AdminURL()+"/webhooks/endpoints/nope/breaker-open", ""); code != 404 {
				t.Fatalf("an unknown endpoint's breaker: %d", code)
			}
		})
	}
}

// Two instances on one Redis: the breaker is shared, so while it is open only one probe
// goes per cooldown, from either instance, never one from each.
func TestBreakerTwoInstancesOneRedis(t *testing.T) {
	sink := startSickSink(t)
	cfg := strings.NewReplacer("{STORE}", "store redis "+redistest.Start(t).URL(), "{SINK}", sink.URL).Replace(breakerCaddyfile)
	a := startCaddy(t, cfg)
	b := startCaddy(t, cfg)
	for i := range 10 {
		c := a
		if i%2 == 1 {
			c = b
		}
		publish(t, c, "order.created", fmt.Sprintf(`{"n":%d}`, i))
	}
	testwait.Until(t, 15*time.Second, func() bool {
		st, _, _ := breakerOf(t, b, "app")
		return st.State == "open"
	}, "the breaker to open")
	// Each instance counts the failures it saw: the first to see 3 in a row opens the
	// breaker for both, so at most 2 of the other's, and its attempt in flight, come too.
	time.Sleep(500 * time.Millisecond) // that attempt lands; the first probe is 2s away
	opened := sink.hits()
	if opened < 3 || opened > 6 {
		t.Fatalf("%d attempts before the breaker opened", opened)
	}
	time.Sleep(6 * time.Second)
	sink.mu.Lock()
	probes := append([]time.Time(nil), sink.at[opened:]...)
	sink.mu.Unlock()
	if len(probes) < 1 || len(probes) > 2 {
		t.Fatalf("%d probes in 6.5s across two instances, want 1 or 2 (one per cooldown)", len(probes))
	}
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].Sub(probes[i-1]); gap < 1500*time.Millisecond {
			t.Fatalf("two probes %v apart: both instances probed", gap)
		}
	}
	sink.down.Store(false)
	testwait.Until(t, 20*time.Second, func() bool { return len(sink.accepted()) == 10 }, "the backlog to drain")
	seen := map[string]bool{}
	for _, body := range sink.accepted() {
		if seen[body] {
			t.Fatalf("%s delivered twice", body)
		}
		seen[body] = true
	}
	for _, c := range []*Caddy{a, b} {
		settledBreaker(t, c, "app")
	}
}

// What the outside review of the breaker broke, through the built Caddy: the
// subscriptions API accepted a breaker that cannot run with its defaults (max_cooldown
// under the default cooldown: the subscription then silently took no events) and a
// nanosecond cooldown (a probe flood that never dead-letters); a cross-site browser
// request opened a breaker on the admin endpoint.
func TestBreakerReviewFindings(t *testing.T) {
	sink := startSickSink(t)
	c := startCaddy(t, strings.NewReplacer("{STORE}", "store embedded\n\t\tsubscriptions {\n\t\t\tallow_private\n\t\t}", "{SINK}", sink.URL).Replace(breakerCaddyfile))
	for _, bad := range []struct{ breaker, want string }{
		{`{"failures":1,"max_cooldown":"1s"}`, "cooldown 30s (the default) is longer than max_cooldown 1s"},
		{`{"failures":1,"cooldown":"1ns","max_cooldown":"1ns"}`, "not a duration between 1s and 24h"},
		{`{"cooldown":"100000h"}`, "not a duration between 1s and 24h"},
		{`{"off":true,"failures":3}`, "off takes no other option"},
	} {
		code, ans := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+sink.URL+`/sub","events":["order.*"],"breaker":`+bad.breaker+`}`)
		if code != 422 || !strings.Contains(jsonString(ans), bad.want) {
			t.Errorf("breaker %s: %d %v, want 422 naming %q", bad.breaker, code, ans, bad.want)
		}
	}
	req, _ := http.NewRequest("POST", c.AdminURL()+"/webhooks/endpoints/app/breaker-open", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b, _, _ := breakerOf(t, c, "app"); resp.StatusCode != 403 || b.State != "closed" {
		t.Fatalf("a cross-site breaker-open: %d, breaker %+v", resp.StatusCode, b)
	}
}
