package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

// adminDo sends method to the admin endpoint's path with headers (name, value pairs) and
// decodes the JSON answer.
func adminDo(t *testing.T, c *Caddy, method, path string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, c.AdminURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		out["raw"] = string(b)
	}
	return res.StatusCode, out
}

func orderPath(route, key string) string {
	return "/webhooks/inbound/" + route + "/order?key=" + url.QueryEscape(key)
}

// Issue 20, item 1: one event dated 2262 (or a sender's clock far ahead) must not make every
// later event of its record stale. It is handed on, not recorded, and visible; an operator
// can read and clear a record's value through the admin API (cross-site requests refused).
func TestOrderGuardCannotBePoisoned(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line, rs := "store embedded", (*redistest.Server)(nil)
			if store == "redis" {
				rs = redistest.Start(t)
				line = "store redis " + rs.URL()
			}
			be := startBackend(t)
			cfg := strings.NewReplacer("{STORE}", line, "{BACKEND}", be.Addr).Replace(orderCaddyfile)
			c := startCaddy(t, cfg, totvsKey)
			row := "dddddddd-0000-4000-8000-00000000000d"
			for i, poison := range []string{"2262-04-11T00:00:00Z", time.Now().Add(2 * time.Hour).Format(time.RFC3339)} {
				code, h, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(100+i), row, poison), "X-Api-Key", "tk-456")
				if code != 200 || h.Get("Webhook-Stale") != "" {
					t.Fatalf("the event dated %s: %d stale=%q %s", poison, code, h.Get("Webhook-Stale"), body)
				}
			}
			if n := be.Count(); n != 2 {
				t.Fatalf("the backend got %d of the 2 far-future events, want both (handed on)", n)
			}
			now := time.Now().UTC().Truncate(time.Second)
			code, h, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(110), row, now.Format(time.RFC3339)), "X-Api-Key", "tk-456")
			if code != 200 || h.Get("Webhook-Stale") != "" || be.Count() != 3 {
				t.Fatalf("a real event dated now after the far-future ones: %d stale=%q backend=%d %s", code, h.Get("Webhook-Stale"), be.Count(), body)
			}
			// Visible: its own outcome in the metrics, the log line and the request log.
			m := string(metricsText(t, c))
			if !regexp.MustCompile(`caddy_webhook_inbound_requests_total\{outcome="order_ahead",route="totvs_crm",source="totvs_crm"\} 2\n`).MatchString(m) {
				t.Fatalf("metrics:\n%s", grepLines(m, "totvs_crm"))
			}
			if !strings.Contains(c.Log(), `"outcome":"order_ahead"`) {
				t.Fatal("no log line says order_ahead")
			}
			testwait.Until(t, 10*time.Second, func() bool {
				recs, _ := requests(t, c, "totvs_crm", "?outcome=order_ahead")
				return len(recs) == 2 && recs[0]["status"] == float64(200) && recs[0]["order_key"] == row
			}, "the far-future requests in the request log")

			// The record's value, as the admin API shows it: the real event's, not the poison.
			code, got := adminDo(t, c, http.MethodGet, orderPath("totvs_crm", row))
			if code != 200 || got["recorded"] != true || got["value"] != now.Format(time.RFC3339Nano) || got["record_key"] != row {
				t.Fatalf("GET the record's value: %d %v", code, got)
			}
			older := now.Add(-time.Minute).Format(time.RFC3339)
			if _, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(111), row, older), "X-Api-Key", "tk-456"); h.Get("Webhook-Stale") != "true" {
				t.Fatal("an older event after the real one is not stale: the guard no longer guards")
			}
			// Cross-site: a page on another origin cannot clear it (Caddy's admin origin check).
			if code, got := adminDo(t, c, http.MethodDelete, orderPath("totvs_crm", row), "Origin", "http://attacker.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"); code != 403 {
				t.Fatalf("a cross-site DELETE: %d %v", code, got)
			}
			if _, got := adminDo(t, c, http.MethodGet, orderPath("totvs_crm", row)); got["recorded"] != true {
				t.Fatalf("the cross-site DELETE cleared the value: %v", got)
			}
			// The operator clears it: an older event passes again.
			if code, got := adminDo(t, c, http.MethodDelete, orderPath("totvs_crm", row)); code != 200 || got["cleared"] != true {
				t.Fatalf("DELETE: %d %v", code, got)
			}
			if code, got := adminDo(t, c, http.MethodGet, orderPath("totvs_crm", row)); code != 200 || got["recorded"] != false {
				t.Fatalf("GET after DELETE: %d %v", code, got)
			}
			if code, got := adminDo(t, c, http.MethodDelete, orderPath("totvs_crm", row)); code != 200 || got["cleared"] != false {
				t.Fatalf("DELETE of nothing: %d %v", code, got)
			}
			if _, h, _ := send(t, c.Base()+"/totvs", totvsAt(t, uuid(112), row, older), "X-Api-Key", "tk-456"); h.Get("Webhook-Stale") != "" {
				t.Fatal("after the clear an older event is still stale")
			}
			// Precise refusals.
			for _, tc := range []struct {
				method, path string
				code         int
				want         string
			}{
				{http.MethodGet, "/webhooks/inbound/totvs_crm/order", 400, "key"},
				{http.MethodGet, orderPath("totvs_crm", strings.Repeat("k", 2000)), 400, "key"},
				{http.MethodPost, orderPath("totvs_crm", row), 405, "GET or DELETE"},
				{http.MethodGet, orderPath("nope", row), 404, "nope"},
			} {
				code, got := adminDo(t, c, tc.method, tc.path)
				if code != tc.code || !strings.Contains(fmt.Sprint(got["detail"]), tc.want) {
					t.Errorf("%s %s: %d %v, want %d naming %q", tc.method, tc.path, code, got, tc.code, tc.want)
				}
			}
			if rs != nil { // the store away: a 503 that names it
				rs.Stop()
				for _, m := range []string{http.MethodGet, http.MethodDelete} {
					if code, got := adminDo(t, c, m, orderPath("totvs_crm", row)); code != 503 || !strings.Contains(fmt.Sprint(got["detail"]), "order store unavailable") {
						t.Errorf("%s with Redis away: %d %v", m, code, got)
					}
				}
			}
		})
	}
}

// Issue 20, item 2: order values outside 1678–2262 (where UnixNano overflows) compare as
// the times they are: an event dated 1600 does not make a real one stale.
func TestOrderValuesOutsideTheNanosecondRange(t *testing.T) {
	be := startBackend(t)
	cfg := strings.NewReplacer("{STORE}", "store embedded", "{BACKEND}", be.Addr).Replace(orderCaddyfile)
	c := startCaddy(t, cfg, totvsKey)
	row := "eeeeeeee-0000-4000-8000-00000000000e"
	for i, step := range []struct {
		ts    string
		stale bool
	}{
		{"1600-01-01T00:00:00Z", false},
		{"2025-03-11T09:00:00-03:00", false},
		{"1677-09-21T00:12:43Z", true},
		{"0000-01-01T00:00:00+23:59", true},
		{"2025-03-11T09:00:00.000000001-03:00", false},
		{"2025-03-11T09:00:00-03:00", true},
	} {
		code, h, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(200+i), row, step.ts), "X-Api-Key", "tk-456")
		if code != 200 || (h.Get("Webhook-Stale") == "true") != step.stale {
			t.Fatalf("event %d dated %s: %d stale=%q, want stale=%v %s", i+1, step.ts, code, h.Get("Webhook-Stale"), step.stale, body)
		}
	}
	if code, got := adminDo(t, c, http.MethodGet, orderPath("totvs_crm", row)); code != 200 || got["value"] != "2025-03-11T12:00:00.000000001Z" {
		t.Fatalf("the record's value: %d %v", code, got)
	}
}

// Issue 20, item 3: every timestamp the totvs_crm schema accepts is one the guard orders.
// TOTVS writes offsets without a colon (ISO 8601); a 400 there would make it retry and lose
// the event. A walk over the forms: each is answered 200 (handed on, or stale), or 422 if
// the schema refuses it, never 400 invalid_order_value.
func TestOrderTakesEveryTimestampTheSchemaTakes(t *testing.T) {
	be := startBackend(t)
	cfg := strings.NewReplacer("{STORE}", "store embedded", "{BACKEND}", be.Addr).Replace(orderCaddyfile)
	c := startCaddy(t, cfg, totvsKey)
	must := []string{
		"2025-03-11T09:21:00-0300", "2025-03-11T09:21:00.117-0300", "2025-03-11T09:21:00-03:00",
		"2025-03-11T12:21:00Z", "2025-03-11T12:21:00.1234567891234Z", "2025-03-11t12:21:00z",
		"2025-03-11T12:21:00.5+0000", "2025-03-11T09:21:00-03", "2025-03-11T12:21:00,5Z", "2024-02-29T23:59:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999-2359",
	}
	refused := []string{"2025-02-29T10:00:00Z", "2025-13-01T10:00:00Z", "2025-03-11T24:00:00Z", "2025-03-11T09:21:00+2400",
		"2025-03-11 09:21:00Z", "2025-03-11T09:21:00", "2025-03-11T09:21:00-3:00", "2025-03-11T09:21:00+24",
		// Longer than the guard reads (64 characters): the schema says so (an outside
		// review found the schema took it and the guard answered 400).
		"2025-03-11T09:20:00." + strings.Repeat("1", 44) + "Z", "2025-03-11T09:20:00." + strings.Repeat("1", 5000) + "-03:00"}
	must = append(must, "2025-03-11T09:20:00."+strings.Repeat("1", 43)+"Z") // 64 characters
	n := 0
	for _, ts := range must {
		n++
		code, _, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(300+n), fmt.Sprintf("ffffffff-0000-4000-8000-%012d", n), ts), "X-Api-Key", "tk-456")
		if code != 200 {
			t.Errorf("%s: %d %s", ts, code, body)
		}
	}
	for _, ts := range refused {
		n++
		code, _, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(300+n), fmt.Sprintf("ffffffff-0000-4000-8000-%012d", n), ts), "X-Api-Key", "tk-456")
		if code != 422 || !strings.Contains(string(body), `"pointer":"/timestamp"`) {
			t.Errorf("%s: %d %s, want the schema's 422 at /timestamp", ts, code, body)
		}
	}
	// The same instant in two writings compares equal; a nanosecond less is stale.
	row := "ffffffff-0000-4000-8000-999999999999"
	for i, step := range []struct {
		ts    string
		stale bool
	}{{"2025-03-11T09:21:00-0300", false}, {"2025-03-11t12:21:00z", false}, {"2025-03-11T12:20:59.999999999Z", true}, {"2025-03-11T09:21:00.000000001-03:00", false}} {
		code, h, body := send(t, c.Base()+"/totvs", totvsAt(t, uuid(400+i), row, step.ts), "X-Api-Key", "tk-456")
		if code != 200 || (h.Get("Webhook-Stale") == "true") != step.stale {
			t.Fatalf("%s: %d stale=%q, want stale=%v %s", step.ts, code, h.Get("Webhook-Stale"), step.stale, body)
		}
	}
	// The CLI agrees with the route: what `caddy webhook validate` passes, the guard orders.
	body := totvsAt(t, uuid(499), row, "2025-03-11T09:21:00-0300")
	if out, errOut, code := cli(t, "validate", "--schema", "totvs_crm", writeTemp(t, string(body))); code != 0 {
		t.Fatalf("validate: %d %s %s", code, out, errOut)
	}
}

// Issue 20, item 15: a forced replay of an event older than its record's newest value
// would move the backend's state backwards. The replay is refused with the record's newest
// value until the operator confirms (older=true); the confirmed answer still says so.
func TestForcedReplayOfAnOlderEventSaysSo(t *testing.T) {
	be := startBackend(t)
	cfg := strings.NewReplacer("{STORE}", "store embedded", "{BACKEND}", be.Addr).Replace(orderCaddyfile)
	c := startCaddy(t, cfg, totvsKey)
	row := "abababab-0000-4000-8000-0000000000ab"
	send(t, c.Base()+"/totvs", totvsAt(t, uuid(501), row, "2025-03-11T09:15:00-03:00"), "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", totvsAt(t, uuid(502), row, "2025-03-11T09:20:00-03:00"), "X-Api-Key", "tk-456")
	var oldID, newID string
	testwait.Until(t, 10*time.Second, func() bool {
		recs, _ := requests(t, c, "totvs_crm", "?outcome=accepted")
		if len(recs) != 2 {
			return false
		}
		newID, oldID = recs[0]["id"].(string), recs[1]["id"].(string)
		return true
	}, "both events in the request log")

	replay := func(id, query string) (int, map[string]any) {
		return adminDo(t, c, http.MethodPost, "/webhooks/inbound/totvs_crm/requests/"+id+"/replay"+query)
	}
	n := be.Count()
	code, got := replay(oldID, "?force=true")
	ord, _ := got["order"].(map[string]any)
	if code != 409 || ord["older"] != true || ord["newest"] != "2025-03-11T12:20:00Z" || ord["value"] != "2025-03-11T12:15:00Z" ||
		!strings.Contains(fmt.Sprint(got["detail"]), "older=true") {
		t.Fatalf("a forced replay of the older event: %d %v, want 409 naming the newest value", code, got)
	}
	if be.Count() != n {
		t.Fatal("the refused replay reached the backend")
	}
	code, got = replay(oldID, "?force=true&older=true")
	ord, _ = got["order"].(map[string]any)
	if code != 200 || got["outcome"] != "accepted" || ord["older"] != true || !strings.Contains(fmt.Sprint(got["warning"]), "older") || be.Count() != n+1 {
		t.Fatalf("the confirmed replay: %d %v (backend %d → %d)", code, got, n, be.Count())
	}
	// The newest event's forced replay needs no confirmation; an unforced replay of the
	// older one is the guard's business (stale), not a warning.
	if code, got := replay(newID, "?force=true"); code != 200 || got["outcome"] != "accepted" || got["warning"] != nil {
		t.Fatalf("a forced replay of the newest event: %d %v", code, got)
	}
	if code, got := replay(oldID, ""); code != 200 || got["outcome"] != "duplicate" {
		t.Fatalf("an unforced replay of the older event: %d %v", code, got)
	}
	if code, got := replay(oldID, "?force=true&older=maybe"); code != 400 || !strings.Contains(fmt.Sprint(got["detail"]), "older") {
		t.Fatalf("older=maybe: %d %v", code, got)
	}
}
