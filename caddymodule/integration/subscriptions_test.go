package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"golang.org/x/crypto/bcrypt"
)

const subsCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
		{SUBS}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /api/subscriptions* {
		basic_auth {
			partner {HASH}
		}
		webhook_subscriptions {
			prefix /api/subscriptions
		}
	}
}
`

func subsConfig(t *testing.T, store, subs string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("partner-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("{STORE}", store, "{SUBS}", subs, "{HASH}", string(hash)).Replace(subsCaddyfile)
}

// call sends a JSON request and decodes the answer.
func call(t *testing.T, method, url, body string, auth ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"_raw": string(b)}
	}
	return res.StatusCode, out
}

func publish(t *testing.T, c *Caddy, typ, body string) int {
	t.Helper()
	code, _, rb := send(t, c.Base()+"/publish", []byte(body), "Webhook-Event-Type", typ)
	if code != 202 {
		t.Fatalf("publish %s: %d %s", typ, code, rb)
	}
	var out struct{ Endpoints int }
	_ = json.Unmarshal(rb, &out)
	return out.Endpoints
}

// verifies is the integration tests' one Standard Webhooks check: the specification's
// reference library, independent of Hookgate's signature package, verifies r with secret.
func verifies(t testing.TB, secret string, r Received) bool {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(r.Body, r.Header) == nil
}

func TestSubscriptionsThroughCaddy(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", "subscriptions {\n\t\t\tallow_private\n\t\t\tgrace 1h\n\t\t}\n\t\tendpoint lost {\n\t\t\turl "+be.URL+"/lost\n\t\t\tevents deal.*\n\t\t\tfilter `data.New.StatusId == 3`\n\t\t\tallow_private\n\t\t}"))
	admin := c.AdminURL() + "/webhooks/subscriptions"
	site := c.Base() + "/api/subscriptions"

	// Created on the admin endpoint, with a filter.
	code, won := call(t, "POST", admin, `{"url":"`+be.URL+`/won","events":["deal.*"],"filter":"data.New.StatusId == 2 && type == \"deal.won\"","description":"CRM wins"}`)
	if code != 201 {
		t.Fatalf("create on the admin endpoint: %d %v", code, won)
	}
	wonID, wonSecret := won["id"].(string), won["secret"].(string)
	// Created on the site, behind basic_auth.
	if code, _ := call(t, "POST", site, `{"url":"`+be.URL+`/all"}`); code != 401 {
		t.Fatalf("no credentials on the site route: %d", code)
	}
	code, all := call(t, "POST", site, `{"url":"`+be.URL+`/all","events":["deal.won"],"secret":"`+whsec+`"}`, "partner", "partner-pass")
	if code != 201 || all["secret"] != whsec {
		t.Fatalf("create on the site: %d %v", code, all)
	}
	allID := all["id"].(string)
	if code, g := call(t, "GET", site+"/"+allID, "", "partner", "partner-pass"); code != 200 || g["secret"] != nil {
		t.Fatalf("read on the site: %d %v (the secret must never be shown again)", code, g)
	}

	// A filter that does not match delivers nothing to that subscription.
	if n := publish(t, c, "deal.won", `{"New":{"StatusId":1}}`); n != 1 {
		t.Fatalf("StatusId 1 went to %d endpoints, want 1", n)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/all")) == 1 }, "the unfiltered delivery")
	if n := publish(t, c, "deal.won", `{"New":{"StatusId":2}}`); n != 2 {
		t.Fatalf("StatusId 2 went to %d endpoints, want 2", n)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/won")) == 1 }, "the filtered delivery")
	// Nothing is left to deliver to the filtered subscription: the StatusId 1 event was
	// never queued for it.
	if ds := settledDeliveries(t, c, wonID); len(ds) != 1 {
		t.Fatalf("the filtered subscription has %d deliveries queued or done, want 1", len(ds))
	}
	if got := byPath(be.Got(), "/won"); len(got) != 1 {
		t.Fatalf("the filtered subscription got %d deliveries, want 1", len(got))
	}
	// A Caddyfile endpoint's filter works the same way.
	if n := publish(t, c, "deal.won", `{"New":{"StatusId":3}}`); n != 2 {
		t.Fatalf("StatusId 3 went to %d endpoints, want 2 (the unfiltered subscription and the filtered endpoint)", n)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/lost")) == 1 }, "the filtered Caddyfile endpoint's delivery")
	w := byPath(be.Got(), "/won")[0]
	if !verifies(t, wonSecret, w) || string(w.Body) != `{"New":{"StatusId":2}}` {
		t.Fatalf("the delivery does not verify with the reference library: %v", w.Header)
	}
	if a := byPath(be.Got(), "/all")[0]; !verifies(t, whsec, a) {
		t.Fatal("the delivery with a given secret does not verify")
	}

	// Rotation: the new secret is returned once; during the grace both verify.
	code, rot := call(t, "POST", admin+"/"+wonID+"/rotate-secret", "")
	newSecret, _ := rot["secret"].(string)
	if code != 200 || newSecret == "" || newSecret == wonSecret {
		t.Fatalf("rotate: %d %v", code, rot)
	}
	publish(t, c, "deal.won", `{"New":{"StatusId":2},"n":2}`)
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/won")) == 2 }, "the delivery after rotation")
	r2 := byPath(be.Got(), "/won")[1]
	if !verifies(t, wonSecret, r2) || !verifies(t, newSecret, r2) {
		t.Fatalf("during the grace both secrets must verify: %q", r2.Header.Get("Webhook-Signature"))
	}

	// Durable: after a restart the subscription is there and still delivers.
	c.Restart()
	if code, g := call(t, "GET", admin+"/"+wonID, ""); code != 200 || g["description"] != "CRM wins" {
		t.Fatalf("after a restart: %d %v", code, g)
	}
	publish(t, c, "deal.won", `{"New":{"StatusId":2},"n":3}`)
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/won")) == 3 }, "a delivery after the restart")

	// Listed beside the configured endpoints, with the description; in the metrics.
	var eps []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/endpoints", &eps)
	found := false
	for _, e := range eps {
		if e["name"] == wonID && e["subscription"] == true && e["description"] == "CRM wins" {
			found = true
		}
	}
	if !found {
		t.Fatalf("endpoints listing: %v", eps)
	}
	if m := string(metricsText(t, c)); !strings.Contains(m, `caddy_webhook_subscription_info{description="CRM wins",endpoint="`+wonID+`"} 1`) ||
		!strings.Contains(m, `caddy_webhook_outbound_attempts_total{endpoint="`+wonID+`",outcome="delivered"} 1`) {
		t.Fatalf("metrics lack the subscription:\n%s", grepLines(m, "subscription"))
	}

	// Deleting a subscription with pending deliveries dead-letters them.
	be.SetStatus(func(n int) int {
		return 503
	})
	code, slow := call(t, "POST", admin, `{"url":"`+be.URL+`/slow","events":["order.*"],"retry":["1h"]}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, slow)
	}
	slowID := slow["id"].(string)
	publish(t, c, "order.paid", `{"order":1}`)
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/slow")) == 1 }, "the first failed attempt")
	code, del := call(t, "DELETE", admin+"/"+slowID, "")
	if code != 200 || del["dead_lettered"] != float64(1) {
		t.Fatalf("delete: %d %v", code, del)
	}
	var dead []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint="+slowID+"&state=dead", &dead)
	if len(dead) != 1 || !strings.Contains(fmt.Sprint(dead[0]["attempts"]), "subscription deleted") {
		t.Fatalf("dead letters of the deleted subscription: %v", dead)
	}
	// … and without naming it: the dead-letter listing (the dashboard's "Dead letters").
	var allDead []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=dead", &allDead)
	if len(allDead) != 1 || allDead[0]["endpoint"] != slowID {
		t.Fatalf("GET /webhooks/deliveries?state=dead omits the deleted subscription's dead letter: %v", allDead)
	}
	if code, _ := call(t, "GET", admin+"/"+slowID, ""); code != 404 {
		t.Fatalf("read after delete: %d", code)
	}

	// Bad input through Caddy: precise problems.
	for body, want := range map[string]int{
		`{"url":"https://example.com/x","colour":"red"}`:                                      400,
		`{"url":"gopher://example.com/x"}`:                                                    422,
		`{"url":"https://example.com/x","filter":"data.New.StatusId"}`:                        422,
		`{"url":"https://example.com/x","description":"` + strings.Repeat("x", 70<<10) + `"}`: 413,
	} {
		req, _ := http.NewRequest("POST", admin, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%.50s: %d %s; want %d problem+json", body, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Subscriptions are written by people outside the operator's config: private targets are
// refused unless the operator allows them.
func TestSubscriptionGuard(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", ""))
	admin := c.AdminURL() + "/webhooks/subscriptions"
	if code, p := call(t, "POST", admin, `{"url":"`+be.URL+`/x"}`); code != 422 || !strings.Contains(fmt.Sprint(p["detail"]), "loopback") {
		t.Fatalf("a literal loopback target: %d %v", code, p)
	}
	// A name is judged at delivery, on the address it resolves to.
	port := be.Addr[strings.LastIndexByte(be.Addr, ':')+1:]
	code, s := call(t, "POST", admin, `{"url":"http://localhost:`+port+`/x","retry":[]}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, s)
	}
	id := s["id"].(string)
	publish(t, c, "t", `{}`)
	var dead []map[string]any
	testwait.Until(t, 10*time.Second, func() bool {
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint="+id+"&state=dead", &dead)
		return len(dead) == 1
	}, "the refused attempt")

	if a := fmt.Sprint(dead[0]["attempts"]); !strings.Contains(a, "loopback") || be.Count() != 0 {
		t.Fatalf("the guard did not refuse: %s, %d requests reached the target", a, be.Count())
	}
}

// Two instances on one Redis: a subscription made on one is used by the other within 2 s;
// deleted on one, the other stops delivering.
func TestSubscriptionsAcrossInstances(t *testing.T) {
	be := startBackend(t)
	rs := redistest.Start(t)
	cfg := subsConfig(t, "store redis "+rs.URL(), "subscriptions {\n\t\t\tallow_private\n\t\t}")
	a, b := startCaddy(t, cfg), startCaddy(t, cfg)
	code, s := call(t, "POST", a.AdminURL()+"/webhooks/subscriptions", `{"url":"`+be.URL+`/shared","events":["deal.won"]}`)
	if code != 201 {
		t.Fatalf("create on a: %d %v", code, s)
	}
	id := s["id"].(string)
	t0 := time.Now()
	testwait.Until(t, 2*time.Second, func() bool {
		var eps []map[string]any
		getJSON(t, b.AdminURL()+"/webhooks/endpoints", &eps)
		for _, e := range eps {
			if e["name"] == id {
				return true
			}
		}
		return false
	}, "b to hold the subscription")

	t.Logf("b saw the subscription after %v", time.Since(t0))
	// A change made on a is applied by b too.
	if code, _ := call(t, "PATCH", a.AdminURL()+"/webhooks/subscriptions/"+id, `{"events":["deal.won","deal.lost"]}`); code != 200 {
		t.Fatalf("patch on a: %d", code)
	}
	testwait.Until(t, 2*time.Second, func() bool {
		code, _, rb := send(t, b.Base()+"/publish", []byte(`{"probe":true}`), "Webhook-Event-Type", "deal.lost")
		return code == 202 && strings.Contains(string(rb), `"endpoints":1`)
	}, "b to apply the change")

	if n := publish(t, b, "deal.won", `{"from":"b"}`); n != 1 {
		t.Fatalf("publish on b reached %d endpoints", n)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(be.Got(), "/shared")) == 2 }, "the delivery published on b")
	if !verifies(t, s["secret"].(string), byPath(be.Got(), "/shared")[1]) {
		t.Fatal("the delivery made by b does not verify with the secret a returned")
	}
	if code, _ := call(t, "DELETE", a.AdminURL()+"/webhooks/subscriptions/"+id, ""); code != 200 {
		t.Fatalf("delete on a: %d", code)
	}
	testwait.Until(t, 2*time.Second, func() bool {
		code, _, rb := send(t, b.Base()+"/publish", []byte(`{"from":"b","after":"delete"}`), "Webhook-Event-Type", "deal.won")
		return code == 202 && strings.Contains(string(rb), `"endpoints":0`)
	}, "b to drop the subscription")

	// Neither instance has anything left to deliver to the deleted subscription (the
	// probes queued before b dropped it included).
	settledDeliveries(t, a, id)
	settledDeliveries(t, b, id)
	if n := len(byPath(be.Got(), "/shared")); n != 2 {
		t.Fatalf("after the delete the target got %d deliveries, want 2", n)
	}
}
