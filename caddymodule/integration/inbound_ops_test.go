package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const orderCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		reverse_proxy {BACKEND}
	}
	handle /seq {
		webhook_receive {
			name seq
			auth header X-Api-Key {env.TOTVS_KEY}
			event_id json:/id
			order_by int:json:/seq key json:/record
		}
		reverse_proxy {BACKEND}
	}
}
`

// totvsAt is a TOTVS event for record row with its own event id and timestamp.
func totvsAt(t *testing.T, id, row, ts string) []byte {
	b := sample(t, "totvs_crm/opportunity-won.json")
	s := strings.Replace(string(b), "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20", id, 1)
	s = strings.Replace(s, "2025-03-11T09:15:42.117-03:00", ts, 1)
	return []byte(strings.Replace(s, "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", row, 1))
}

func uuid(n int) string { return fmt.Sprintf("%08d-1111-4111-8111-%012d", n, n) }

func TestStaleEventGuard(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line := "store embedded"
			if store == "redis" {
				line = "store redis " + redistest.Start(t).URL()
			}
			be := startBackend(t)
			cfg := strings.NewReplacer("{STORE}", line, "{BACKEND}", be.Addr).Replace(orderCaddyfile)
			c := startCaddy(t, cfg, totvsKey)
			rowA, rowB := "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
			// Sent newest first, with the offsets TOTVS uses: each older one is stale.
			for i, ts := range []string{"2025-03-11T09:20:00.000-03:00", "2025-03-11T12:19:00.000Z", "2025-03-11T09:15:42.117-03:00"} {
				code, h, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(i+1), rowA, ts), "X-Api-Key", "tk-456")
				wantStale := i > 0
				if code != 200 || (h.Get("Webhook-Stale") == "true") != wantStale {
					t.Fatalf("event %d (%s): %d stale=%q %s", i+1, ts, code, h.Get("Webhook-Stale"), body)
				}
			}
			if n := be.Count(); n != 1 {
				t.Fatalf("the backend got %d events for record A, want only the newest", n)
			}
			// Another record is not affected by A's newest; an equal time passes.
			if code, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(4), rowB, "2025-03-11T09:00:00.000-03:00"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Stale") != "" {
				t.Fatalf("record B: %d stale=%q", code, h.Get("Webhook-Stale"))
			}
			if code, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(5), rowA, "2025-03-11T09:20:00-03:00"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Stale") != "" {
				t.Fatalf("an equal time for A: %d stale=%q", code, h.Get("Webhook-Stale"))
			}
			// In the right sense: newer ones pass.
			if code, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(6), rowA, "2025-03-11T09:21:00-03:00"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Stale") != "" {
				t.Fatalf("a newer event for A: %d", code)
			}
			if n := be.Count(); n != 4 {
				t.Fatalf("the backend got %d events, want 4", n)
			}
			// A stale event's retry is a duplicate (it was answered 2xx).
			if code, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(2), rowA, "2025-03-11T12:19:00.000Z"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
				t.Fatalf("a stale event's retry: %d dup=%q", code, h.Get("Webhook-Duplicate"))
			}
			// Integers; an unparsable value is a 400 naming the pointer.
			code, _, body := send(t, c.Base()+"/seq", []byte(`{"id":"x1","record":"r","seq":"soon"}`), "X-Api-Key", "tk-456")
			if code != 400 || !strings.Contains(string(body), `"pointer":"/seq"`) || !strings.Contains(string(body), "invalid_order_value") {
				t.Fatalf("an unparsable order value: %d %s", code, body)
			}
			send(t, c.Base()+"/seq", []byte(`{"id":"x2","record":"r","seq":10}`), "X-Api-Key", "tk-456")
			if _, h, _ := send(t, c.Base()+"/seq", []byte(`{"id":"x3","record":"r","seq":9}`), "X-Api-Key", "tk-456"); h.Get("Webhook-Stale") != "true" {
				t.Fatal("9 after 10 is not stale")
			}
			// Two concurrent events of one record: the second waits for the first, then is
			// compared with it (handed on after it, or stale); it is never handed on first.
			// The backend holds the first event it gets; it is released hold after that (a
			// deliberately slow hand-off), or, with hold 0, once the other event has been
			// answered (it gave up waiting).
			concurrent := func(hold time.Duration, base int) []int {
				release := be.Hold()
				var wg sync.WaitGroup
				var answered atomic.Int32
				codes := make([]int, 2)
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						codes[i], _, _ = send(t, c.Base()+"/totvs", totvsAt(t, uuid(base+i), rowB, fmt.Sprintf("2025-03-11T10:%02d:00-03:00", base+i)), "X-Api-Key", "tk-456")
						answered.Add(1)
					}()
				}
				testwait.Until(t, 30*time.Second, func() bool { return len(be.Held()) == 1 }, "the first event held at the backend")
				if hold > 0 {
					time.Sleep(hold)
				} else {
					testwait.Until(t, 30*time.Second, func() bool { return answered.Load() == 1 }, "the other event answered while the first is held")
				}
				release()
				wg.Wait()
				return codes
			}
			n0 := be.Count()
			if codes := concurrent(300*time.Millisecond, 10); codes[0] != 200 || codes[1] != 200 {
				t.Fatalf("concurrent events of one record, a short hand-off: %v, want both 200 (the second waited)", codes)
			}
			got := be.Got()[n0:]
			if len(got) == 2 && !strings.Contains(string(got[0].Body), "10:10:00") {
				t.Fatalf("the newer event was handed on before the older one: %s", got[0].Body)
			}
			// A hand-off longer than the wait: the other event gets 409 (the sender retries).
			if codes := concurrent(0, 20); !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
				t.Fatalf("concurrent events of one record, a long hand-off: %v, want one 200 and one 409", codes)
			}
			m := string(metricsText(t, c))
			// Two stale in the newest-first sequence, and maybe one of the concurrent pair.
			if !regexp.MustCompile(`caddy_webhook_inbound_requests_total\{outcome="stale",route="totvs_crm",source="totvs_crm"\} [23]\n`).MatchString(m) {
				t.Fatalf("metrics:\n%s", grepLines(m, "outcome=\"stale\""))
			}
			// The inbound counts: stale events were answered 200, so they are not "rejected".
			var counts []struct {
				Route    string           `json:"route"`
				Stale    int              `json:"stale"`
				Rejected map[string]int64 `json:"rejected"`
			}
			getJSON(t, c.AdminURL()+"/webhooks/inbound", &counts)
			for _, rc := range counts {
				if rc.Route == "totvs_crm" && (rc.Stale < 2 || rc.Rejected["stale"] != 0) {
					t.Fatalf("/webhooks/inbound counts stale events as %d stale and %d rejected, want 2 or 3 stale and none rejected",
						rc.Stale, rc.Rejected["stale"])
				}
			}
			if !strings.Contains(c.Log(), `"outcome":"stale"`) {
				t.Fatal("no log line says stale")
			}
			testwait.Until(t, 10*time.Second, func() bool {
				recs, _ := requests(t, c, "totvs_crm", "?outcome=stale")
				return len(recs) >= 2 && recs[0]["status"] == float64(200)
			}, "the stale requests in the request log")

		})
	}
}

// Two instances on one Redis agree on which event is stale.
func TestStaleEventGuardAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	be := startBackend(t)
	cfg := strings.NewReplacer("{STORE}", "store redis "+rs.URL(), "{BACKEND}", be.Addr).Replace(orderCaddyfile)
	a, b := startCaddy(t, cfg, totvsKey), startCaddy(t, cfg, totvsKey)
	row := "cccccccc-0000-4000-8000-00000000000c"
	if code, h, _ := send(t, a.Base()+"/totvs", totvsAt(t, uuid(1), row, "2025-03-11T09:20:00-03:00"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Stale") != "" {
		t.Fatalf("newest on a: %d", code)
	}
	if code, h, _ := send(t, b.Base()+"/totvs", totvsAt(t, uuid(2), row, "2025-03-11T09:19:00-03:00"), "X-Api-Key", "tk-456"); code != 200 || h.Get("Webhook-Stale") != "true" {
		t.Fatalf("older on b: %d stale=%q", code, h.Get("Webhook-Stale"))
	}
	if be.Count() != 1 {
		t.Fatalf("backend got %d", be.Count())
	}
}

const reqlogCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key {env.K_PLOOMES}
		}
		reverse_proxy {BACKEND}
	}
	handle /bearer {
		webhook_receive {
			name bearer
			auth bearer {env.K_BEARER}
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /basic {
		webhook_receive {
			name basic
			auth basic ops {env.K_BASIC}
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /header {
		webhook_receive {
			name header
			auth header X-Secret-Token {env.K_HEADER}
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /query {
		webhook_receive {
			name query
			auth query key {env.K_QUERY}
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /hmac {
		webhook_receive {
			name hmac
			auth hmac generic {env.K_HMAC} {
				header X-Signature
			}
			event_id json:/id
			log_body 8
		}
		reverse_proxy {BACKEND}
	}
	handle /off {
		webhook_receive {
			name off
			auth none
			log_requests 0
		}
		reverse_proxy {BACKEND}
	}
}
`

var reqlogEnv = []string{"K_PLOOMES=pl-s3cret-1", "K_BEARER=be-s3cret-2", "K_BASIC=ba-s3cret-3", "K_HEADER=he-s3cret-4",
	"K_QUERY=qu-s3cret-5", "K_HMAC=hm-s3cret-6"}

func requests(t *testing.T, c *Caddy, route, query string) ([]map[string]any, string) {
	t.Helper()
	res, err := http.Get(c.AdminURL() + "/webhooks/inbound/" + route + "/requests" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("requests of %s: %d %s", route, res.StatusCode, b)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out, string(b)
}

func TestRequestLog(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line := "store embedded"
			var rs *redistest.Server
			if store == "redis" {
				rs = redistest.Start(t)
				line = "store redis " + rs.URL()
			}
			be := startBackend(t)
			cfg := strings.NewReplacer("{STORE}", line, "{BACKEND}", be.Addr).Replace(reqlogCaddyfile)
			c := startCaddy(t, cfg, reqlogEnv...)
			body := []byte(`{"id":"e1","n":1}`)
			mac := hmac.New(sha256.New, []byte("hm-s3cret-6"))
			mac.Write(body)
			for _, s := range []struct {
				path string
				hdr  []string
			}{
				{"/bearer", []string{"Authorization", "Bearer be-s3cret-2"}},
				{"/basic", []string{"Authorization", "Basic " + basic("ops", "ba-s3cret-3")}},
				{"/header", []string{"X-Secret-Token", "he-s3cret-4"}},
				{"/query?key=qu-s3cret-5&tenant=acme", nil},
				{"/hmac", []string{"X-Signature", "sha256=" + hex.EncodeToString(mac.Sum(nil))}},
				{"/bearer", []string{"Authorization", "Bearer wrong-s3cret-9"}},
				// The auth reads ?key= exactly (and its percent-encodings); another case is
				// refused, and redacted all the same.
				{"/query?KEY=qu-s3cret-5&tenant=acme", []string{"X-Expect", "401"}},
				{"/query?Key=qu-s3cret-5", []string{"X-Expect", "401"}},
				{"/query?%6Bey=qu-s3cret-5", nil},
			} {
				if code, _, rb := send(t, c.Base()+s.path, body, s.hdr...); code != 200 && !(code == 401 && (strings.Contains(s.hdr[1], "wrong") || s.hdr[1] == "401")) {
					t.Fatalf("%s: %d %s", s.path, code, rb)
				}
			}
			ploomes := sample(t, "ploomes/contact-update.json")
			send(t, c.Base()+"/ploomes", ploomes, "X-Ploomes-Validation-Key", "pl-s3cret-1")
			send(t, c.Base()+"/ploomes", []byte(`{"Action":"Win","Entity":"Deal","New":{"Id":"not-a-number"}}`), "X-Ploomes-Validation-Key", "pl-s3cret-1")
			send(t, c.Base()+"/off", body)
			settle := func(route string, n int) {
				testwait.Until(t, 10*time.Second, func() bool { recs, _ := requests(t, c, route, ""); return len(recs) >= n }, "the log of "+route)
			}
			settle("bearer", 2)
			settle("ploomes", 2)
			settle("query", 4)
			// No credential of any kind appears, in any route's log.
			for _, route := range []string{"ploomes", "bearer", "basic", "header", "query", "hmac"} {
				settle(route, 1)
				_, raw := requests(t, c, route, "")
				for _, secret := range append(reqlogEnv, "wrong-s3cret-9", basic("ops", "ba-s3cret-3")) {
					if _, v, ok := strings.Cut(secret, "="); ok {
						secret = v
					}
					if strings.Contains(raw, secret) {
						t.Fatalf("route %s's log holds the credential %q:\n%s", route, secret, raw)
					}
				}
			}
			recs, _ := requests(t, c, "query", "")
			if uri := recs[3]["uri"].(string); !strings.Contains(uri, "tenant=acme") || !strings.Contains(uri, "key=REDACTED") {
				t.Fatalf("query log uri: %s", uri)
			}
			if uri := recs[2]["uri"].(string); !strings.Contains(uri, "tenant=acme") || !strings.Contains(uri, "KEY=REDACTED") {
				t.Fatalf("query log uri of ?KEY=: %s", uri)
			}
			// A refusal shows its problem and its errors with pointers.
			refused, _ := requests(t, c, "ploomes", "?outcome=schema_violation")
			if len(refused) != 1 || refused[0]["status"] != float64(422) || refused[0]["detail"] == "" ||
				!strings.Contains(fmt.Sprint(refused[0]["errors"]), "pointer") {
				t.Fatalf("the refusal in the log: %v", refused)
			}
			unauth, _ := requests(t, c, "bearer", "?outcome=unauthorized")
			if len(unauth) != 1 || unauth[0]["replayable"] != false {
				t.Fatalf("unauthorized in the log: %v", unauth)
			}
			if hm, _ := requests(t, c, "hmac", ""); hm[0]["body_cut"] != true || hm[0]["body"] != `{"id":"e` || hm[0]["replayable"] != false {
				t.Fatalf("a cut body: %v", hm[0])
			}
			if res, _ := http.Get(c.AdminURL() + "/webhooks/inbound/off/requests"); res.StatusCode != 404 {
				t.Fatalf("log_requests 0: %d", res.StatusCode)
			}
			// Replay: through dedupe unless forced, and logged as a replay.
			acc, _ := requests(t, c, "bearer", "?outcome=accepted")
			id := acc[0]["id"].(string)
			before := be.Count()
			code, ans := call(t, "POST", c.AdminURL()+"/webhooks/inbound/bearer/requests/"+id+"/replay", "")
			if code != 200 || ans["outcome"] != "duplicate" || be.Count() != before {
				t.Fatalf("a replay without force: %d %v (backend %d→%d)", code, ans, before, be.Count())
			}
			code, ans = call(t, "POST", c.AdminURL()+"/webhooks/inbound/bearer/requests/"+id+"/replay?force=true", "")
			if code != 200 || ans["outcome"] != "accepted" || ans["status"] != float64(200) {
				t.Fatalf("a forced replay: %d %v", code, ans)
			}
			testwait.Until(t, 10*time.Second, func() bool { return be.Count() == before+1 }, "the replay at the backend")
			got := be.Got()[be.Count()-1]
			if string(got.Body) != string(body) || got.Header.Get("X-Hookgate-Replay-Of") != id || got.Header.Get("Authorization") != "" {
				t.Fatalf("the replay as the backend got it: %s %v", got.Body, got.Header)
			}
			settle("bearer", 4)
			all, _ := requests(t, c, "bearer", "")
			if all[0]["replay"] != true || all[0]["replay_of"] != id || all[0]["forced"] != true {
				t.Fatalf("the replay's own record: %v", all[0])
			}
			if code, _ := call(t, "POST", c.AdminURL()+"/webhooks/inbound/bearer/requests/"+unauth[0]["id"].(string)+"/replay", ""); code != 409 {
				t.Fatalf("replaying an unauthorized request: %d", code)
			}
			if rs != nil {
				// Shared by instances: another one on the same Redis lists and replays it.
				c2 := startCaddy(t, cfg, reqlogEnv...)
				other, _ := requests(t, c2, "bearer", "")
				if len(other) != len(all) {
					t.Fatalf("the other instance lists %d records, want %d", len(other), len(all))
				}
				code, ans := call(t, "POST", c2.AdminURL()+"/webhooks/inbound/bearer/requests/"+id+"/replay?force=true", "")
				if code != 200 || ans["status"] != float64(200) {
					t.Fatalf("replay from the other instance: %d %v", code, ans)
				}
			}
		})
	}
}

func basic(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
