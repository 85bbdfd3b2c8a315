package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/redis/go-redis/v9"
)

const outboundCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
		endpoint erp {
			url {SINK}/erp
			events contact.* deal.won
			header X-Partner-Key {env.PARTNER_KEY}
			sign standard {env.ERP_WHSEC}
			retry 100ms 100ms 100ms
			allow_private
		}
		endpoint all {
			url {SINK}/all
			retry 100ms
			allow_private
			{ALL_EXTRA}
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish {
			max_body 64KB
		}
	}
	handle /ploomes {
		webhook_receive ploomes {
			validation_key {env.PLOOMES_KEY}
			mode async
			deliver_to {SINK}/inbound {
				retry 200ms 1m
				response_timeout 10s
			}
		}
	}
}
`

var whsec = "whsec_" + base64.StdEncoding.EncodeToString([]byte("integration-test-secret-32-bytes"))

func outboundConfig(store, sink, allExtra string) string {
	return strings.NewReplacer("{STORE}", store, "{SINK}", sink, "{ALL_EXTRA}", allExtra).Replace(outboundCaddyfile)
}

var outboundEnv = []string{"PARTNER_KEY=pk-1", "ERP_WHSEC=" + whsec, "PLOOMES_KEY=pl-123"}

// listedDelivery is a delivery as the admin API lists it (the fields tests read).
type listedDelivery struct {
	ID       string            `json:"id"`
	Endpoint string            `json:"endpoint"`
	EventID  string            `json:"event_id"`
	State    string            `json:"state"`
	Attempts []json.RawMessage `json:"attempts"`
}

// settledDeliveries waits until c's queue holds no pending delivery (of endpoint, or of
// any endpoint when it is "") and returns every delivery the admin API then lists. Once
// nothing is pending nothing more will be attempted, so a test that asserts something did
// not happen waits for this first: the system has had its chance to act.
func settledDeliveries(t testing.TB, c *Caddy, endpoint string) []listedDelivery {
	t.Helper()
	u := c.AdminURL() + "/webhooks/deliveries?limit=1000"
	if endpoint != "" {
		u += "&endpoint=" + endpoint
	}
	var ds []listedDelivery
	testwait.Until(t, 30*time.Second, func() bool {
		ds = nil
		getJSON(t, u, &ds)
		for _, d := range ds {
			if d.State == "pending" {
				return false
			}
		}
		return true
	}, "no delivery pending at "+c.AdminURL())
	return ds
}

func byPath(got []Received, path string) []Received {
	var out []Received
	for _, r := range got {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func TestPublishDeliversSignedToMatchingEndpoints(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, outboundConfig("store embedded", be.URL, ""), outboundEnv...)
	body := []byte(`{"contact":{"id":42,"name":"Ana"}}`)
	code, _, rb := send(t, c.Base()+"/publish", body, "Webhook-Event-Type", "contact.created")
	var ans struct {
		ID        string `json:"id"`
		Endpoints int    `json:"endpoints"`
	}
	_ = json.Unmarshal(rb, &ans)
	if code != 202 || ans.Endpoints != 2 || !strings.HasPrefix(ans.ID, "evt_") {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool { return be.Count() == 2 }, "two deliveries")
	erp := byPath(be.Got(), "/erp")
	if len(erp) != 1 {
		t.Fatalf("erp got %d", len(erp))
	}
	r := erp[0]
	if string(r.Body) != string(body) || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Webhook-Id") != ans.ID ||
		r.Header.Get("X-Partner-Key") != "pk-1" || !verifies(t, whsec, r) {
		t.Fatalf("erp delivery: %+v %s", r.Header, r.Body)
	}
	if all := byPath(be.Got(), "/all"); len(all) != 1 || all[0].Header.Get("Webhook-Signature") != "" {
		t.Fatalf("'all' delivery: %+v", all)
	}

	// A type only "all" takes, via ?type=.
	code, _, rb = send(t, c.Base()+"/publish?type=invoice.paid", []byte(`{"n":1}`))
	if code != 202 || !strings.Contains(string(rb), `"endpoints":1`) {
		t.Fatalf("?type=: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool { return be.Count() == 3 }, "third delivery")
}

func TestPublishIdempotencyAndBadInput(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, outboundConfig("store embedded", be.URL, ""), outboundEnv...)
	u := c.Base() + "/publish"
	body := []byte(`{"deal":7}`)
	code, h1, rb1 := send(t, u, body, "Webhook-Event-Type", "deal.won", "Idempotency-Key", "order-7")
	code2, h2, rb2 := send(t, u, body, "Webhook-Event-Type", "deal.won", "Idempotency-Key", "order-7")
	if code != 202 || code2 != 202 || string(rb1) != string(rb2) || h1.Get("Idempotent-Replayed") != "" || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat publish: %d %s / %d %s %v", code, rb1, code2, rb2, h2)
	}
	testwait.Until(t, 10*time.Second, func() bool { return be.Count() == 2 }, "deliveries")
	// The queue has nothing left to deliver: a repeat that had been queued would be listed.
	if ds := settledDeliveries(t, c, ""); len(ds) != 2 || be.Count() != 2 {
		t.Fatalf("a repeated publish was delivered again: %d deliveries, %d queued", be.Count(), len(ds))
	}
	cases := []struct {
		name   string
		url    string
		body   string
		hdr    []string
		status int
		detail string
	}{
		{"same key, other body", u, `{"deal":8}`, []string{"Webhook-Event-Type", "deal.won", "Idempotency-Key", "order-7"}, 422, "different body"},
		{"no type", u, `{}`, nil, 400, "Webhook-Event-Type"},
		{"type with spaces", u, `{}`, []string{"Webhook-Event-Type", "a b"}, 400, "printable"},
		{"not JSON type", u, `{}`, []string{"Content-Type", "text/plain", "Webhook-Event-Type", "x"}, 415, ""},
		{"invalid JSON", u, `{"a":}`, []string{"Webhook-Event-Type", "x"}, 400, ""},
		{"too large", u, `{"a":"` + strings.Repeat("x", 70000) + `"}`, []string{"Webhook-Event-Type", "x"}, 413, ""},
	}
	for _, tc := range cases {
		code, h, rb := send(t, tc.url, []byte(tc.body), tc.hdr...)
		if code != tc.status || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(rb), tc.detail) {
			t.Errorf("%s: %d %s %s", tc.name, code, h.Get("Content-Type"), rb)
		}
	}
	req, _ := http.NewRequest("GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	var invalid map[string]any
	_, _, rb := send(t, u, []byte(`{"a":}`), "Webhook-Event-Type", "x")
	_ = json.Unmarshal(rb, &invalid)
	if invalid["offset"] != float64(5) {
		t.Fatalf("invalid JSON offset: %s", rb)
	}
}

func TestAsyncInboundQueuesThenDelivers(t *testing.T) {
	be := startBackend(t)
	be.SetStatus(func(n int) int {
		if n == 1 {
			return 503
		}
		return 200
	})
	c := startCaddy(t, outboundConfig("store embedded", be.URL, ""), outboundEnv...)
	ev := sample(t, "ploomes/contact-update.json")
	// Credential headers the route does not read are never queued either: the same list the
	// request log redacts (internal/credential).
	code, _, rb := send(t, c.Base()+"/ploomes", ev, "X-Ploomes-Validation-Key", "pl-123", "X-Api-Key", "ak-leak-1",
		"Cookie", "sid=ck-leak-2", "Proxy-Authorization", "Basic cHgtbGVhay0z")
	if code != 202 || !strings.Contains(string(rb), `"id"`) {
		t.Fatalf("async receive: %d %s", code, rb)
	}
	var ans struct{ ID string }
	_ = json.Unmarshal(rb, &ans)
	// The first attempt gets 503; the retry (200ms here) delivers it.
	testwait.Until(t, 10*time.Second, func() bool { return be.Count() == 2 }, "the retry")
	r := be.Got()[1]
	if r.Path != "/inbound" || string(r.Body) != string(ev) || r.Header.Get("X-Webhook-Event-Id") != ans.ID ||
		r.Header.Get("X-Webhook-Source") != "ploomes" || r.Header.Get("X-Ploomes-Validation-Key") != "" || r.Header.Get("Webhook-Id") == "" {
		t.Fatalf("delivered: %s %v", r.Path, r.Header)
	}
	for _, h := range []string{"X-Api-Key", "Cookie", "Proxy-Authorization"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("the credential header %s was forwarded to deliver_to: %q", h, v)
		}
	}
	// A duplicate is answered from the dedupe store and not queued again.
	code, h, _ := send(t, c.Base()+"/ploomes", ev, "X-Ploomes-Validation-Key", "pl-123")
	if code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("duplicate: %d %v", code, h)
	}
	// Refusals are the same as in sync mode.
	if code, _, _ := send(t, c.Base()+"/ploomes", ev, "X-Ploomes-Validation-Key", "wrong"); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
}

func TestPrivateTargetRefusedWithoutAllowPrivate(t *testing.T) {
	be := startBackend(t)
	cfg := strings.Replace(outboundConfig("store embedded", be.URL, ""), "retry 100ms\n\t\t\tallow_private", "retry off", 1)
	c := startCaddy(t, cfg, outboundEnv...)
	if code, _, rb := send(t, c.Base()+"/publish", []byte(`{}`), "Webhook-Event-Type", "invoice.paid"); code != 202 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool {
		var ds []map[string]any
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint=all&state=dead", &ds)
		return len(ds) == 1 && strings.Contains(fmt.Sprint(ds[0]["attempts"]), "blocked")
	}, "a dead letter")

	if be.Count() != 0 {
		t.Fatalf("a loopback target got %d requests without allow_private", be.Count())
	}
}

// parallel runs f(0) … f(n-1) on 16 goroutines and waits for them.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// publishMany publishes n events with distinct Idempotency-Keys, 16 at a time, and
// returns their ids; every one must get a 202.
func publishMany(t *testing.T, url string, n int) []string {
	ids := make([]string, n)
	parallel(n, func(i int) {
		code, _, rb := send(t, url, []byte(fmt.Sprintf(`{"n":%d}`, i)), "Webhook-Event-Type", "invoice.paid", "Idempotency-Key", fmt.Sprint("k", i))
		var ans struct{ ID string }
		if code != 202 || json.Unmarshal(rb, &ans) != nil {
			t.Errorf("publish %d: %d %s", i, code, rb)
			return
		}
		ids[i] = ans.ID
	})
	return ids
}

// kill9Run kills Caddy twice while deliveries are in progress and restarts it, then
// waits until every id in ids has reached the sink (the key header says which).
func kill9Run(t *testing.T, c *Caddy, be *Backend, ids []string, key, label string) {
	for kill := 1; kill <= 2; kill++ {
		at := be.Count() + len(ids)/10
		testwait.Until(t, 60*time.Second, func() bool { return be.Count() >= at }, "deliveries in progress")
		c.Kill()
		t.Logf("kill -9 #%d after %d deliveries", kill, be.Count())
		c.start()
	}
	seen := map[string]int{}
	testwait.Until(t, 120*time.Second, func() bool {
		clear(seen)
		for _, r := range be.Got() {
			seen[r.Header.Get(key)]++
		}
		for _, id := range ids {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	}, "every event delivered")

	twice := 0
	for _, id := range ids {
		if seen[id] > 1 {
			twice++
		}
	}
	record(t, label, fmt.Sprintf("%d × 202 before the kills; after restarts all %d delivered, %d of them twice (at least once)", len(ids), len(ids), twice),
		"0 events")
}

func kill9Store(t *testing.T, store string) string {
	if store == "redis" {
		return "store redis " + redistest.Start(t).URL()
	}
	return "store embedded"
}

// Publish 2,000 events, kill -9 Caddy twice while they are being delivered, restart it:
// every event reaches the sink at least once.
func TestKill9DuringDeliveryLosesNothing(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			be := startBackend(t)
			be.delay = 2 * time.Millisecond
			// Only the "all" endpoint takes invoice.paid.
			c := startCaddy(t, outboundConfig(kill9Store(t, store), be.URL, "concurrency 4"), outboundEnv...)
			release := be.Hold() // nothing is delivered until every event is published
			ids := publishMany(t, c.Base()+"/publish", 2000)
			release()
			kill9Run(t, c, be, ids, "Webhook-Id", "Caddy kill -9 twice during outbound delivery, "+store+" store")
		})
	}
}

const asyncKillCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive totvs_crm {
		auth header X-Api-Key {env.TOTVS_KEY}
		mode async
		deliver_to {SINK}/inbound
	}
}
`

// Inbound async: 1,000 webhooks answered 202, kill -9 twice during delivery, restart:
// every one reaches the internal app at least once.
func TestKill9DuringAsyncInboundLosesNothing(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			be := startBackend(t)
			be.delay = 10 * time.Millisecond
			cfg := strings.NewReplacer("{STORE}", kill9Store(t, store), "{SINK}", be.URL).Replace(asyncKillCaddyfile)
			c := startCaddy(t, cfg, totvsKey)
			const n = 1000
			release := be.Hold()
			ids := make([]string, n)
			parallel(n, func(i int) {
				ids[i] = fmt.Sprintf("%08d-2222-4222-8222-222222222222", i)
				if code, _, rb := send(t, c.Base()+"/", totvsEvent(t, ids[i]), "X-Api-Key", "tk-456"); code != 202 {
					t.Errorf("webhook %d: %d %s", i, code, rb)
				}
			})
			release()
			kill9Run(t, c, be, ids, "X-Webhook-Event-Id", "Caddy kill -9 twice during async inbound delivery, "+store+" store")
		})
	}
}

// Two instances share one Redis queue. One is killed with deliveries leased and never comes
// back: the other takes its leases over once they lapse (15 s without renewal) and
// delivers everything.
//
// The test proves each step: A's leases are read from Redis (the due score of a leased
// delivery is its lease's end) while A's attempts of them wait at the held sink; A is
// killed; every one of A's leased deliveries reaches the sink, from B, no earlier than
// the lease end Redis held for it.
func TestKilledInstanceLeasesAreTakenOverByAnother(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client(t)
	ctx := context.Background()
	be := startBackend(t)
	be.delay = 5 * time.Millisecond
	cfg := outboundConfig("store redis "+rs.URL(), be.URL, "concurrency 8")
	release := be.Hold()
	a := startCaddy(t, cfg, outboundEnv...)
	ids := publishMany(t, a.Base()+"/publish", 500)
	// A's eight workers lease deliveries and wait at the held sink.
	testwait.UntilNil(t, 60*time.Second, func() error {
		if n := len(be.Held()); n == 0 {
			return fmt.Errorf("%d held, %d delivered", n, be.Count())
		}
		return nil
	}, "A's attempts to wait at the sink")
	heldBefore := be.Held()
	// Only the "all" endpoint takes invoice.paid. A pending delivery is due at its creation
	// (or its retry); a leased one at its lease's end, LeaseFor (15 s) ahead.
	const due = "hookgate:{hookgate:q:all}:due"
	leasedUntil := map[string]time.Time{} // event id -> lease end
	now := time.Now()
	zs, err := rc.ZRangeByScoreWithScores(ctx, due, &redis.ZRangeBy{Min: fmt.Sprint(now.Add(5 * time.Second).UnixMilli()), Max: "+inf"}).Result()
	if err != nil {
		t.Fatalf("reading the due set: %v", err)
	}
	for _, z := range zs {
		d := z.Member.(string)
		ev, err := rc.HGet(ctx, "hookgate:{hookgate:q:all}:d:"+d, "ev").Result()
		if err != nil {
			t.Fatalf("reading delivery %s: %v", d, err)
		}
		leasedUntil[ev] = time.UnixMilli(int64(z.Score))
	}
	// What was held both before and after Redis was read was being attempted meanwhile.
	stillHeld := map[string]bool{}
	for _, r := range be.Held() {
		stillHeld[r.Header.Get("Webhook-Id")] = true
	}
	attempted := 0
	for _, r := range heldBefore {
		id := r.Header.Get("Webhook-Id")
		if !stillHeld[id] {
			continue
		}
		attempted++
		if _, ok := leasedUntil[id]; !ok {
			t.Fatalf("A is attempting %s, which Redis does not show leased (leases: %v)", id, leasedUntil)
		}
	}
	if attempted == 0 || len(leasedUntil) == 0 {
		t.Fatalf("A held no lease while attempting: %d attempts held throughout, %d leases in Redis\n%s", attempted, len(leasedUntil), a.Log())
	}
	t.Logf("A held %d leases in Redis", len(leasedUntil))
	a.Kill() // its leased deliveries are stuck until their leases lapse
	killed := time.Now()
	b := startCaddy(t, cfg, outboundEnv...)
	release()
	seen := map[string]Received{}
	testwait.Until(t, 90*time.Second, func() bool {
		clear(seen)
		for _, r := range be.Got() {
			if _, ok := seen[r.Header.Get("Webhook-Id")]; !ok {
				seen[r.Header.Get("Webhook-Id")] = r
			}
		}
		for _, id := range ids {
			if _, ok := seen[id]; !ok {
				return false
			}
		}
		return true
	}, "every event delivered by B")
	var last time.Time
	for ev, until := range leasedUntil {
		r := seen[ev]
		if r.At.Before(until) {
			t.Errorf("%s, leased by A until %s, was delivered %v before its lease lapsed", ev, until.Format(time.StampMilli), until.Sub(r.At))
		}
		if r.At.Before(killed) {
			t.Errorf("%s, leased by A, was delivered before A was killed", ev)
		}
		if r.At.After(last) {
			last = r.At
		}
	}
	// B, the only instance left, records every delivery as delivered (the last ones just
	// after the sink answered them).
	testwait.UntilNil(t, 30*time.Second, func() error {
		var ds []listedDelivery
		getJSON(t, b.AdminURL()+"/webhooks/deliveries?endpoint=all&state=delivered&limit=1000", &ds)
		if len(ds) != len(ids) {
			return fmt.Errorf("B lists %d delivered deliveries, want %d", len(ds), len(ids))
		}
		return nil
	}, "B to record every delivery delivered")
	record(t, "Caddy instance A killed for good with deliveries leased; instance B on the same Redis",
		fmt.Sprintf("B delivered all %d events; A's %d leased ones %v after the kill, none before its lease lapsed (15 s)",
			len(ids), len(leasedUntil), last.Sub(killed).Round(100*time.Millisecond)),
		"0 events")
}

// On a real 3-node Redis Cluster, through the built Caddy: inbound dedupe, async inbound
// and outbound delivery all work (every operation stays within one slot).
func TestRedisClusterEndToEnd(t *testing.T) {
	cl := redistest.StartCluster(t)
	addrs := cl.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	be := startBackend(t)
	cfg := outboundConfig("store redis "+url+" {\n\t\t\tcluster\n\t\t}", be.URL, "")
	c := startCaddy(t, cfg, outboundEnv...)

	// Outbound: published, queued in the cluster, delivered.
	if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"n":1}`), "Webhook-Event-Type", "invoice.paid"); code != 202 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	// Async inbound with dedupe: 202, then a copy is a duplicate.
	ev := sample(t, "ploomes/contact-update.json")
	if code, _, rb := send(t, c.Base()+"/ploomes", ev, "X-Ploomes-Validation-Key", "pl-123"); code != 202 {
		t.Fatalf("async receive: %d %s", code, rb)
	}
	if code, h, _ := send(t, c.Base()+"/ploomes", ev, "X-Ploomes-Validation-Key", "pl-123"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("copy: %d dup=%q", code, h.Get("Webhook-Duplicate"))
	}
	testwait.Until(t, 10*time.Second, func() bool {
		return len(byPath(be.Got(), "/all")) == 1 && len(byPath(be.Got(), "/inbound")) == 1
	}, "both deliveries")

	var ds []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=delivered", &ds)
	if len(ds) != 2 {
		t.Fatalf("delivered deliveries listed from the cluster: %d", len(ds))
	}
}
