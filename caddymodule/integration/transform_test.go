package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

const transformCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
		subscriptions {
			allow_private
		}
		endpoint erp {
			url {SINK}/erp
			events contact.*
			sign standard {env.ERP_WHSEC}
			allow_private
			filter ` + "`data.New.Id > 0`" + `
			transform <<CEL
				{"id": body.New.Id, "name": body.New.LegalName, "kind": type}
				CEL
		}
		endpoint held {
			url {SINK}/held
			events contact.*
			retry 50ms
			allow_private
			transform ` + "`{\"id\": body.New.Missing}`" + `
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key pl-123
			transform <<CEL
				{PLOOMES_CEL}
				CEL
		}
		reverse_proxy {SINKADDR}
	}
	handle /ploomes-async {
		webhook_receive ploomes {
			name ploomes-async
			validation_key pl-123
			mode async
			deliver_to {SINK}/async
			transform ` + "`with_headers({\"id\": body.New.Id}, {\"X-Entity\": body.Entity})`" + `
		}
	}
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key tk-1
			transform <<CEL
				{TOTVS_CEL}
				CEL
		}
		reverse_proxy {SINKADDR}
	}
	handle /broken {
		webhook_receive ploomes {
			name broken
			validation_key pl-123
			transform {BROKEN_CEL}
		}
		reverse_proxy {SINKADDR}
	}
	handle /hostile {
		webhook_receive {
			name hostile
			auth none
			transform ` + "`{\"x\": body.items.map(a, body.items.map(b, body.items.map(c, a + b + c)))}`" + `
		}
		reverse_proxy {SINKADDR}
	}
	handle /echo {
		webhook_receive {
			name echo
			auth header X-Secret-Token s3cr3t-token
			transform ` + "`{\"h\": headers}`" + `
		}
		reverse_proxy {SINKADDR}
	}
	handle /publish {
		webhook_publish
	}
}
`

func transformConfig(t *testing.T, store string, be *Backend, broken string) string {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile("../../examples/transforms/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n\t\t\t\t")
	}
	return strings.NewReplacer("{STORE}", store, "{SINK}", be.URL, "{SINKADDR}", be.Addr, "{BROKEN_CEL}", broken,
		"{PLOOMES_CEL}", read("ploomes-contact.cel"), "{TOTVS_CEL}", read("totvs-opportunity.cel")).Replace(transformCaddyfile)
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	return m
}

// Through the built Caddy, on both stores: inbound routes hand the backend (sync) or the
// queue (async) the transformed body; a configured endpoint and a subscription receive
// their transformed bodies, signed over them (the reference Standard Webhooks library
// verifies); a transform error answers 500 inbound (and replays once fixed) and holds the
// outbound delivery as failed, retryable after the fix; a hostile transform is refused by
// its budget.
func TestTransformsThroughCaddy(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			be := startBackend(t)
			broken := "`{\"id\": body.New.Missing}`"
			cfg := transformConfig(t, kill9Store(t, store), be, broken)
			c := startCaddy(t, cfg, "ERP_WHSEC="+whsec)
			ploomes := sample(t, "ploomes/contact-update.json")

			// Sync: the backend reads the new body with its own Content-Length.
			if code, _, b := send(t, c.Base()+"/ploomes", ploomes, "X-Ploomes-Validation-Key", "pl-123"); code != 200 {
				t.Fatalf("ploomes: %d %s", code, b)
			}
			got := byPath(be.Got(), "/ploomes")
			if len(got) != 1 {
				t.Fatalf("the backend got %d ploomes requests", len(got))
			}
			m := decodeObject(t, got[0].Body)
			if m["id"] != 2630362.0 || m["name"] != "Ploomes Sistemas Empresariais" || m["kind"] != "Contacts.Update" ||
				got[0].Length != int64(len(got[0].Body)) {
				t.Fatalf("the backend read %s (Content-Length %d)", got[0].Body, got[0].Length)
			}
			// The event id is the original's: the same webhook again is a duplicate.
			if code, h, _ := send(t, c.Base()+"/ploomes", ploomes, "X-Ploomes-Validation-Key", "pl-123"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
				t.Fatalf("repeat: %d %v", code, h)
			}
			totvs := sample(t, "totvs_crm/opportunity-won.json")
			if code, _, b := send(t, c.Base()+"/totvs", totvs, "X-Api-Key", "tk-1"); code != 200 {
				t.Fatalf("totvs: %d %s", code, b)
			}
			tm := decodeObject(t, byPath(be.Got(), "/totvs")[0].Body)
			if tm["event_id"] != "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20" || tm["occurred_at"] != 1741695342.0 || tm["record_id"] != "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b" {
				t.Fatalf("totvs: %v", tm)
			}

			// Async: the queue holds, and the internal app gets, the new body and header.
			if code, _, b := send(t, c.Base()+"/ploomes-async", ploomes, "X-Ploomes-Validation-Key", "pl-123"); code != 202 {
				t.Fatalf("async: %d %s", code, b)
			}
			testwait.Until(t, 15*time.Second, func() bool { return len(byPath(be.Got(), "/async")) == 1 }, "the async delivery")
			a := byPath(be.Got(), "/async")[0]
			if string(a.Body) != `{"id":2630362}` || a.Header.Get("X-Entity") != "Contacts" {
				t.Fatalf("async delivery: %s %v", a.Body, a.Header)
			}

			// The request log keeps the original and shows the transformed body beside it.
			var recs []map[string]any
			getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes-async/requests", &recs)
			if len(recs) != 1 || recs[0]["transformed_body"] != `{"id":2630362}` || !strings.Contains(recs[0]["body"].(string), `"LegalName"`) {
				t.Fatalf("request log: %v", recs)
			}

			// Outbound: a subscription with a transform; the Caddyfile endpoint's too.
			code, sub := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions",
				`{"url":"`+be.URL+`/sub","events":["contact.*"],"transform":"{\"who\": body.New.LegalName, \"to\": endpoint}"}`)
			if code != 201 {
				t.Fatalf("create: %d %v", code, sub)
			}
			if code, bad := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+be.URL+`/x","transform":"{\"a\": nope}"}`); code != 422 ||
				!strings.Contains(jsonString(bad), "undeclared reference to 'nope'") {
				t.Fatalf("a transform that does not compile: %d %v", code, bad)
			}
			if n := publish(t, c, "contact.updated", string(ploomes)); n != 3 {
				t.Fatalf("published to %d endpoints, want 3", n)
			}
			testwait.Until(t, 15*time.Second, func() bool {
				return len(byPath(be.Got(), "/sub")) == 1 && len(byPath(be.Got(), "/erp")) == 1
			}, "the subscription's and the endpoint's deliveries")
			s := byPath(be.Got(), "/sub")[0]
			if string(s.Body) != `{"to":"`+sub["id"].(string)+`","who":"Ploomes Sistemas Empresariais"}` || !verifies(t, sub["secret"].(string), s) {
				t.Fatalf("subscription delivery %s (verifies: %v)", s.Body, verifies(t, sub["secret"].(string), s))
			}
			e := byPath(be.Got(), "/erp")[0]
			if string(e.Body) != `{"id":2630362,"kind":"contact.updated","name":"Ploomes Sistemas Empresariais"}` || !verifies(t, whsec, e) {
				t.Fatalf("endpoint delivery %s", e.Body)
			}
			// The stored delivery is the transformed body.
			var one map[string]any
			getJSON(t, c.AdminURL()+"/webhooks/deliveries/"+deliveryOf(t, c, "erp"), &one)
			if one["body"] != string(e.Body) {
				t.Fatalf("stored body %v", one["body"])
			}
			// The held endpoint: failed attempts with the transform's error, no request.
			held := settledDeliveries(t, c, "held")
			if len(held) != 1 || held[0].State != "dead" || len(byPath(be.Got(), "/held")) != 0 {
				t.Fatalf("held: %+v, %d requests", held, len(byPath(be.Got(), "/held")))
			}
			var hv map[string]any
			getJSON(t, c.AdminURL()+"/webhooks/deliveries/"+held[0].ID, &hv)
			if !strings.Contains(jsonString(hv), "no such key: Missing") || !strings.Contains(jsonString(hv["attempts"]), "transform_failed") {
				t.Fatalf("held delivery: %v", hv)
			}
			if m := string(metricsText(t, c)); !strings.Contains(m, `caddy_webhook_transform_failures_total{endpoint="held",reason="error"} 3`) { // at enqueue, then two attempts
				t.Fatalf("metrics:\n%s", grepLines(m, "transform"))
			}

			// Inbound transform error: 500 transform_failed, kept in the log, replayable.
			code, _, pb := send(t, c.Base()+"/broken", ploomes, "X-Ploomes-Validation-Key", "pl-123")
			if code != 500 || !strings.Contains(string(pb), "transform_failed") || !strings.Contains(string(pb), "no such key: Missing") {
				t.Fatalf("broken: %d %s", code, pb)
			}
			if len(byPath(be.Got(), "/broken")) != 0 {
				t.Fatal("a failed transform reached the backend")
			}
			// On Redis the log is written by a background writer (off the request path).
			testwait.Poll(10*time.Second, func() bool {
				getJSON(t, c.AdminURL()+"/webhooks/inbound/broken/requests", &recs)
				return len(recs) > 0
			})
			if len(recs) != 1 || recs[0]["outcome"] != "transform_failed" || recs[0]["replayable"] != true {
				t.Fatalf("the failed request's record: %v", recs)
			}
			failedID := recs[0]["id"].(string)
			if m := string(metricsText(t, c)); !strings.Contains(m, `caddy_webhook_inbound_requests_total{outcome="transform_failed",route="broken",source="ploomes"} 1`) {
				t.Fatalf("metrics:\n%s", grepLines(m, "transform_failed"))
			}

			// A transform never sees a credential: neither the route's own header nor the
			// usual ones (it could copy them into the body, or test them one guess a request).
			code, _, eb := send(t, c.Base()+"/echo", []byte(`{}`), "X-Secret-Token", "s3cr3t-token", "Authorization", "Bearer tok-abc",
				"Cookie", "sid=cookie-1", "X-Api-Key", "key-2", "X-Ploomes-Validation-Key", "pl-3", "X-Tenant", "acme")
			echo := byPath(be.Got(), "/echo")
			if code != 200 || len(echo) != 1 || !strings.Contains(string(echo[0].Body), `"x-tenant":"acme"`) {
				t.Fatalf("echo: %d %s %v", code, eb, echo)
			}
			for _, secret := range []string{"s3cr3t-token", "tok-abc", "cookie-1", "key-2", "pl-3"} {
				if strings.Contains(string(echo[0].Body), secret) {
					t.Fatalf("a credential reached the transform's output: %s", echo[0].Body)
				}
			}

			// Hostile: loops over loops over a large body are stopped by the budget.
			items := "[" + strings.TrimSuffix(strings.Repeat("1,", 2000), ",") + "]"
			start := time.Now()
			code, _, hb := send(t, c.Base()+"/hostile", []byte(`{"items":`+items+`}`))
			if code != 500 || !strings.Contains(string(hb), "over its budget") {
				t.Fatalf("hostile: %d %s", code, hb)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the hostile transform ran %v", d)
			}

			// The fix, by a reload: the replay goes through, the held delivery is retried.
			reload(t, c, strings.ReplaceAll(strings.ReplaceAll(cfg, broken, "`{\"id\": body.New.Id}`"),
				"body.New.Missing}`", "body.New.Id}`"))
			code, ans := call(t, "POST", c.AdminURL()+"/webhooks/inbound/broken/requests/"+failedID+"/replay", "")
			if code != 200 || len(byPath(be.Got(), "/broken")) != 1 || string(byPath(be.Got(), "/broken")[0].Body) != `{"id":2630362}` {
				t.Fatalf("replay after the fix: %d %v, backend %d", code, ans, len(byPath(be.Got(), "/broken")))
			}
			if code, ans := call(t, "POST", c.AdminURL()+"/webhooks/deliveries/"+held[0].ID+"/retry", ""); code != 200 && code != 202 {
				t.Fatalf("retry: %d %v", code, ans)
			}
			testwait.Until(t, 15*time.Second, func() bool { return len(byPath(be.Got(), "/held")) == 1 }, "the held delivery after the fix")
			if b := string(byPath(be.Got(), "/held")[0].Body); b != `{"id":2630362}` {
				t.Fatalf("held delivery after the fix: %s", b)
			}
			// The delivery shows what was sent, without the old error (the review found the
			// original body and the stale error there).
			testwait.Until(t, 10*time.Second, func() bool {
				var hv map[string]any
				getJSON(t, c.AdminURL()+"/webhooks/deliveries/"+held[0].ID, &hv)
				return hv["body"] == `{"id":2630362}` && hv["transform_error"] == nil && hv["state"] == "delivered"
			}, "the delivery to show the body that was sent")
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func deliveryOf(t *testing.T, c *Caddy, endpoint string) string {
	t.Helper()
	ds := settledDeliveries(t, c, endpoint)
	if len(ds) != 1 {
		t.Fatalf("%s has %d deliveries", endpoint, len(ds))
	}
	return ds[0].ID
}

// caddy webhook transform runs a transform on a file as the route would.
func TestTransformCLI(t *testing.T) {
	out, errb, code := cli(t, "transform", "--expr-file", "../../examples/transforms/ploomes-contact.cel", "--preset", "ploomes",
		"../../examples/samples/ploomes/contact-update.json")
	if code != 0 || !strings.HasPrefix(out, `{"account":57,"changed":[`) || !strings.Contains(out, `"source":"ploomes"`) {
		t.Fatalf("ploomes: %d %q %q", code, out, errb)
	}
	out, _, code = cli(t, "transform", "--expr", `with_headers({"r": route, "t": headers["x-tenant"]}, {"X-A": "1"})`, "--route", "crm",
		"--header", "X-Tenant: acme", "../../examples/samples/ploomes/contact-update.json")
	if code != 0 || out != "X-A: 1\n\n{\"r\":\"crm\",\"t\":\"acme\"}\n" {
		t.Fatalf("headers: %d %q", code, out)
	}
	_, errb, code = cli(t, "transform", "--expr", `{"id": body.New.Missing}`, "../../examples/samples/ploomes/contact-update.json")
	if code == 0 || !strings.Contains(errb, "no such key: Missing") {
		t.Fatalf("a failing transform: %d %q", code, errb)
	}
	_, errb, code = cli(t, "transform", "--expr", `{"a": `, "../../examples/samples/ploomes/contact-update.json")
	if code == 0 || !strings.Contains(errb, "does not compile") {
		t.Fatalf("a transform that does not compile: %d %q", code, errb)
	}
	out, errb, code = cli(t, "transform", "--preset", "ploomes", "--expr", `{"id": body.New.Id}`, "../../examples/samples/totvs_crm/opportunity-won.json")
	if code == 0 || !strings.Contains(out, "schema_violation") {
		t.Fatalf("a payload the preset refuses: %d %q %q", code, out, errb)
	}
	out, _, code = cli(t, "transform", "--outbound", "--type", "deal.won", "--endpoint", "erp", "--expr", `{"t": type, "e": endpoint}`,
		"../../examples/samples/ploomes/contact-update.json")
	if code != 0 || out != "{\"e\":\"erp\",\"t\":\"deal.won\"}\n" {
		t.Fatalf("outbound: %d %q", code, out)
	}
}

// A transform may not set X-Webhook-* headers. Loops over a list are linear in its length: a transform mapping a 7,000-number list on
// an inbound route, and an endpoint whose filter looks through a 6,000-number event and
// whose transform maps it, finish well within their budgets (cel-go v0.32's cost tracker
// made each step scan its stack, so these were refused as over budget: the review of
// the transformations found it).
func TestTransformLongListsThroughCaddy(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint lists {
			url `+be.URL+`/lists
			allow_private
			filter `+"`data.a.exists(x, x == 5999)`"+`
			transform `+"`{\"n\": body.a.map(x, x + 1).size()}`"+`
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /maplin {
		webhook_receive {
			name maplin
			auth none
			dedupe off
			transform `+"`{\"o\": body.a.map(x, x + 1).size()}`"+`
		}
		reverse_proxy `+be.Addr+`
	}
	handle /spoof {
		webhook_receive {
			name spoof
			auth none
			dedupe off
			transform `+"`with_headers({\"id\": 1}, {\"X-Webhook-Verified\": \"true\"})`"+`
		}
		reverse_proxy `+be.Addr+`
	}
	handle /publish {
		webhook_publish
	}
}`)
	// A transform cannot tell the backend that a webhook was verified (the review found it
	// could set X-Webhook-Verified, -Source and -Event-Id).
	if code, _, b := send(t, c.Base()+"/spoof", []byte(`{}`)); code != 500 || !strings.Contains(string(b), "X-Webhook-Verified is set by Hookgate") ||
		len(byPath(be.Got(), "/spoof")) != 0 {
		t.Fatalf("a transform setting X-Webhook-Verified: %d %s", code, b)
	}
	list := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"a":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString("]}")
		return b.String()
	}
	in, out := 7000, 6000
	if raceBuilt(t) { // ten times slower: the sizes the budgets fit there (the plain build catches the regression)
		in, out = 1500, 6000/5
	}
	if code, _, b := send(t, c.Base()+"/maplin", []byte(list(in))); code != 200 || string(byPath(be.Got(), "/maplin")[0].Body) != fmt.Sprintf(`{"o":%d}`, in) {
		t.Fatalf("a %d-number list: %d %s", in, code, b)
	}
	if n := publish(t, c, "t", strings.Replace(list(out), "]}", ",5999]}", 1)); n != 1 {
		t.Fatalf("the filter matched %d endpoints, want 1", n)
	}
	testwait.Until(t, 15*time.Second, func() bool { return len(byPath(be.Got(), "/lists")) == 1 }, "the delivery")
	if b := string(byPath(be.Got(), "/lists")[0].Body); b != fmt.Sprintf(`{"n":%d}`, out+1) {
		t.Fatalf("delivered %s", b)
	}
}

// raceBuilt reports whether the Caddy under test was built with the race detector.
func raceBuilt(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", caddyBin).Output()
	return err == nil && strings.Contains(string(out), "-race=true")
}
