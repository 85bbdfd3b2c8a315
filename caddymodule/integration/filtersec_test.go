package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A subscriber's filter is an oracle over what it can read: with `headers` holding the
// publish request's Authorization, 26 subscriptions `headers["authorization"].startsWith(
// "Bearer internal-<c>")` read the publisher's token one character per publish. Credential
// headers are never visible to filters; other headers are.
func TestFiltersNeverSeeCredentialHeaders(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", "subscriptions {\n\t\t\tallow_private\n\t\t}"))
	admin := c.AdminURL() + "/webhooks/subscriptions"
	filters := []string{
		`headers["authorization"].startsWith("Bearer internal-")`,
		`"authorization" in headers`,
		`headers["cookie"].contains("session=")`,
		`headers["proxy-authorization"] != ""`,
		`headers["x-api-key"] == "k-123"`,
		`headers.exists(k, headers[k].contains("internal-"))`,
		`headers["x-tenant"] == "acme"`, // not a credential: visible
	}
	for _, f := range filters {
		b, _ := json.Marshal(map[string]any{"url": be.URL + "/x", "filter": f})
		if code, out := call(t, "POST", admin, string(b)); code != 201 {
			t.Fatalf("create %s: %d %v", f, code, out)
		}
	}
	code, _, rb := send(t, c.Base()+"/publish", []byte(`{"a":1}`), "Webhook-Event-Type", "deal.won",
		"Authorization", "Bearer internal-s3cret", "Cookie", "session=abc", "Proxy-Authorization", "Basic eDp5",
		"X-Api-Key", "k-123", "X-Tenant", "acme")
	var out struct{ Endpoints int }
	_ = json.Unmarshal(rb, &out)
	if code != 202 || out.Endpoints != 1 {
		t.Fatalf("publish with credentials: %d %s; want 202 and only the x-tenant filter matching (%s)", code, rb,
			fmt.Sprint(len(filters)-1)+" filters read credentials")
	}
}

const crossSiteCaddyfile = `{
	{GLOBAL}
	webhooks {
		subscriptions {
			allow_private
		}
		endpoint sink {
			url {SINK}/sink
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /allowed/publish {
		webhook_publish {
			allowed_origins {EVIL}
		}
	}
	handle /subs* {
		webhook_subscriptions {
			prefix /subs
		}
	}
	handle /allowed/subs* {
		webhook_subscriptions {
			prefix /allowed/subs
			allowed_origins {EVIL}
		}
	}
}
`

// subsCount is how many subscriptions the admin API lists.
func subsCount(t *testing.T, c *Caddy) int {
	t.Helper()
	var out struct{ Subscriptions []map[string]any }
	getJSON(t, c.AdminURL()+"/webhooks/subscriptions", &out)
	return len(out.Subscriptions)
}

// rawWrite sends method to url with body and headers (name, value pairs; no Content-Type
// unless given) and returns the status and the problem's type.
func rawWrite(t *testing.T, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
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
	var p struct{ Type string }
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(b, &p)
	}
	return res.StatusCode, p.Type
}

// A page on another site, in Chromium, cannot create a subscription or publish through
// handlers behind ambient auth (here: none, as behind an IP allow-list): no-cors bodies
// are not JSON, and foreign Origins and Sec-Fetch-Site: cross-site are refused, unless the
// operator lists the origin in allowed_origins (which then answers the CORS preflight).
func TestCrossSiteWritesRefusedInChromium(t *testing.T) {
	browser := chromiumPath(t)
	sink := startBackend(t)
	// The attacker's page, on another loopback origin (127.0.0.2 is another site).
	l, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	evil := "http://" + l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>evil</title><p>hello")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c := startCaddy(t, strings.NewReplacer("{SINK}", sink.URL, "{EVIL}", evil).Replace(crossSiteCaddyfile))
	subBody := `{"url":"` + sink.URL + `/x","events":["*"]}`

	// Publishers and scripts are not browsers: no Origin, no Sec-Fetch-Site, JSON.
	if code, typ := rawWrite(t, "POST", c.Base()+"/publish", `{"a":1}`, "Content-Type", "application/json", "Webhook-Event-Type", "t.x"); code != 202 {
		t.Fatalf("a server-side publish: %d %s", code, typ)
	}
	code, out := call(t, "POST", c.Base()+"/subs", subBody)
	if code != 201 {
		t.Fatalf("a server-side create: %d %v", code, out)
	}
	id := out["id"].(string)
	if code, typ := rawWrite(t, "POST", c.Base()+"/subs/"+id+"/rotate-secret", ""); code != 200 {
		t.Fatalf("a bodiless action without a Content-Type (curl -X POST): %d %s", code, typ)
	}
	// What a browser sends from another site, replayed by hand: every write refused.
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
	}{
		{"no-cors text/plain create", "POST", "/subs", subBody, []string{"Content-Type", "text/plain;charset=UTF-8"}, 415},
		{"form create", "POST", "/subs", subBody, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"foreign Origin create", "POST", "/subs", subBody, []string{"Content-Type", "application/json", "Origin", "http://attacker.example"}, 403},
		{"cross-site create", "POST", "/subs", subBody, []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403},
		{"null Origin create", "POST", "/subs", subBody, []string{"Content-Type", "application/json", "Origin", "null"}, 403},
		{"foreign Origin delete", "DELETE", "/subs/" + id, "", []string{"Origin", "http://attacker.example"}, 403},
		{"cross-site rotate", "POST", "/subs/" + id + "/rotate-secret", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"foreign Origin publish", "POST", "/publish", `{"a":1}`, []string{"Content-Type", "application/json", "Webhook-Event-Type", "t.x", "Origin", "http://attacker.example"}, 403},
		{"cross-site publish", "POST", "/publish", `{"a":1}`, []string{"Content-Type", "application/json", "Webhook-Event-Type", "t.x", "Sec-Fetch-Site", "cross-site"}, 403},
		{"no-cors text/plain publish", "POST", "/publish", `{"a":1}`, []string{"Content-Type", "text/plain", "Webhook-Event-Type", "t.x"}, 415},
	} {
		if code, typ := rawWrite(t, tc.method, c.Base()+tc.path, tc.body, tc.hdr...); code != tc.status || typ == "" {
			t.Errorf("%s: %d (problem type %q), want %d problem+json", tc.name, code, typ, tc.status)
		}
	}
	// The same origin passes (a page the operator serves on this host).
	if code, typ := rawWrite(t, "POST", c.Base()+"/subs", subBody, "Content-Type", "application/json", "Origin", c.Base(), "Sec-Fetch-Site", "same-origin"); code != 201 {
		t.Fatalf("a same-origin create: %d %s", code, typ)
	}
	if n := subsCount(t, c); n != 2 {
		t.Fatalf("%d subscriptions after the hand-made requests, want 2", n)
	}

	// The real thing: Chromium on the attacker's page.
	ctx := browserContext(t, browser)
	if err := chromedp.Do(ctx, chromedp.Navigate(evil+"/")); err != nil {
		t.Fatal(err)
	}
	js := `(async () => {
		const out = [];
		const body = JSON.stringify({url: "` + sink.URL + `/x", events: ["*"]});
		for (const [path, opts] of [
			["/subs", {method: "POST", mode: "no-cors", body}],
			["/subs", {method: "POST", mode: "no-cors", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body}],
			["/subs", {method: "POST", mode: "cors", headers: {"Content-Type": "application/json"}, body}],
			["/publish", {method: "POST", mode: "no-cors", headers: {"Webhook-Event-Type": "t.x"}, body: '{"a":1}'}],
			["/publish?type=t.x", {method: "POST", mode: "no-cors", body: '{"a":1}'}],
			["/allowed/subs", {method: "POST", mode: "cors", headers: {"Content-Type": "application/json"}, body}],
			["/allowed/subs", {method: "POST", mode: "no-cors", body}],
			["/allowed/publish?type=t.x", {method: "POST", mode: "cors", headers: {"Content-Type": "application/json"}, body: '{"a":1}'}],
		]) {
			try { const r = await fetch("` + c.Base() + `" + path, opts); out.push(path + " " + r.type + " " + r.status); }
			catch (e) { out.push(path + " error"); }
		}
		return out.join("\n");
	})()`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"/subs opaque 0", "/subs opaque 0", "/subs error", "/publish opaque 0", "/publish?type=t.x opaque 0",
		"/allowed/subs cors 201", "/allowed/subs opaque 0", "/allowed/publish?type=t.x cors 202",
	}, "\n")
	if got != want {
		t.Errorf("what the page saw:\n%s\nwant:\n%s", got, want)
	}
	// Only the allowed origin's JSON create got through (the page's no-cors answers are
	// opaque to it; the store tells).
	if n := subsCount(t, c); n != 3 {
		t.Fatalf("%d subscriptions after the page ran, want 3 (a cross-site page created %d)", n, n-3)
	}
	// Only the server-side publish and the allowed origin's were queued (a 202 is durable).
	var ds []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint=sink", &ds)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries queued for the configured endpoint, want 2 (the server-side publish and the allowed origin's)", len(ds))
	}
}

// A filter that fails at run time or runs out of the publish's budget is a non-match, and
// visible: counted per endpoint (metrics, the subscription's view, the admin endpoints
// list the dashboard shows), its last error kept, and logged. The number of subscriptions
// is capped (max_subscriptions).
func TestFilterFailuresAreVisibleAndSubscriptionsCapped(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", "subscriptions {\n\t\t\tallow_private\n\t\t\tmax_subscriptions 3\n\t\t}"))
	admin := c.AdminURL() + "/webhooks/subscriptions"
	ids := map[string]string{}
	// Filters share the publish's budget in the order they were added: the costly one
	// last, so what the others end with does not depend on how fast it ran.
	for _, nf := range [][2]string{
		{"missing", `data.Missing.Field == 1`},
		{"regex", `data.s.matches("(a|b)*c")`},
		{"costly", `data.a.map(x, data.a.map(y, x + y)).size() < 0`},
	} {
		name, f := nf[0], nf[1]
		b, _ := json.Marshal(map[string]any{"url": be.URL + "/" + name, "filter": f})
		code, out := call(t, "POST", admin, string(b))
		if code != 201 {
			t.Fatalf("create %s: %d %v", name, code, out)
		}
		ids[name] = out["id"].(string)
	}
	if code, out := call(t, "POST", admin, `{"url":"`+be.URL+`/fourth"}`); code != 422 || out["type"] != "https://hookgate.dev/problems/too_many_subscriptions" {
		t.Fatalf("a fourth subscription with max_subscriptions 3: %d %v", code, out)
	}
	var body strings.Builder
	body.WriteString(`{"a":[`)
	for i := range 3000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprint(&body, i)
	}
	body.WriteString(`],"s":"` + strings.Repeat("ab", 200_000) + `"}`)
	if n := publish(t, c, "deal.won", body.String()); n != 0 {
		t.Fatalf("the hostile publish went to %d endpoints", n)
	}
	for name, id := range ids {
		var v struct {
			FilterFailures struct {
				Errors      uint64 `json:"errors"`
				OverBudget  uint64 `json:"over_budget"`
				LastError   string `json:"last_error"`
				LastErrorAt string `json:"last_error_at"`
			} `json:"filter_failures"`
		}
		getJSON(t, admin+"/"+id, &v)
		ff := v.FilterFailures
		if ff.Errors+ff.OverBudget != 1 || ff.LastError == "" || ff.LastErrorAt == "" {
			t.Errorf("%s's view: %+v; want one failure with its error", name, ff)
		}
		if name == "regex" && ff.OverBudget != 1 {
			t.Errorf("the regex over a 400 KB string: %+v; want it over budget, not run", ff)
		}
	}
	var eps []struct {
		Name           string
		FilterFailures *struct {
			Errors     uint64 `json:"errors"`
			OverBudget uint64 `json:"over_budget"`
		} `json:"filter_failures"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/endpoints", &eps)
	for _, e := range eps {
		if e.FilterFailures == nil || e.FilterFailures.Errors+e.FilterFailures.OverBudget != 1 {
			t.Errorf("endpoint %s in the admin list: %+v", e.Name, e.FilterFailures)
		}
	}
	m := string(metricsText(t, c))
	if !strings.Contains(m, `caddy_webhook_filter_failures_total{endpoint="`+ids["missing"]+`",reason="error"} 1`) ||
		!strings.Contains(m, `caddy_webhook_filter_failures_total{endpoint="`+ids["regex"]+`",reason="over_budget"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(m, "filter_failures"))
	}
	if !strings.Contains(c.Log(), "a filter failed") {
		t.Error("no log line for the failed filters")
	}
}

// The dashboard shows a subscription's filter failures and the last error in its row.
func TestDashboardShowsFilterFailures(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		subscriptions {
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /ops/* {
		webhook_dashboard
	}
}
`)
	code, s := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+be.URL+`/p","filter":"data.Missing.Field == 1"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, s)
	}
	if n := publish(t, c, "deal.won", `{"a":1}`); n != 0 {
		t.Fatalf("published to %d", n)
	}
	row := `tr[data-endpoint="` + s["id"].(string) + `"] .filter-failures`
	ctx := browserContext(t, browser)
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?view=all"), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "filter failed 1×") || !strings.Contains(text, "Missing") {
		t.Fatalf("the row says %q", text)
	}
}
