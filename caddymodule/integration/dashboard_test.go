package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hookgate/hookgate/internal/testwait"
)

const dashboardCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint partner-erp {
			url {SINK}/erp
			events contact.* deal.*
			retry off
			allow_private
		}
		endpoint analytics {
			url {SINK}/analytics
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		respond 200
	}
	handle /ops/* {
		basic_auth {
			ops {HASH}
		}
		webhook_dashboard
	}
}
`

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI installs the Debian package chromium)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// saveShot keeps a screenshot of the dashboard: with HOOKGATE_DOCS_SHOTS=1 as docs/<name>,
// the image the docs show, so it is retaken from the current dashboard; otherwise in the
// test's temporary directory (written, compared with nothing).
func saveShot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("HOOKGATE_DOCS_SHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs")
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatalf("write the screenshot %s: %v", name, err)
	}
}

// browserText returns a reader of an element's text in the tab ctx; it fails the test when
// the element cannot be read.
func browserText(t *testing.T, ctx context.Context) func(sel string) string {
	return func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
}

// browserContext is a headless Chromium tab, closed when the test ends, with a minute for
// everything the test does in it.
func browserContext(t *testing.T, browser string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	return ctx
}

// The dashboard in headless Chromium: it loads behind basic_auth, shows endpoints,
// inbound counters and dead letters; Test shows the endpoint's answer; Retry delivers a
// dead letter; on a phone-sized screen nothing overflows sideways.
func TestDashboardInChromium(t *testing.T) {
	browser := chromiumPath(t)
	hash, err := exec.Command(caddyBin, "hash-password", "--plaintext", "s3cret").Output()
	if err != nil {
		t.Fatal(err)
	}
	sink := startPathSink(t)
	sink.set("/erp", 503)
	cfg := strings.NewReplacer("{SINK}", sink.URL, "{HASH}", strings.TrimSpace(string(hash))).Replace(dashboardCaddyfile)
	c := startCaddy(t, cfg, totvsKey)

	// Unauthenticated: refused by basic_auth.
	if code, _, _ := send(t, c.Base()+"/ops/api/endpoints", nil); code != 401 {
		t.Fatalf("dashboard without credentials: %d", code)
	}
	for _, typ := range []string{"contact.created", "deal.won"} {
		if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"id":7}`), "Webhook-Event-Type", typ); code != 202 {
			t.Fatalf("publish: %d %s", code, rb)
		}
	}
	ev := totvsEvent(t, "14141414-1414-4414-8414-141414141414")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "tk-456")
	send(t, c.Base()+"/totvs", ev, "X-Api-Key", "nope")
	testwait.Until(t, 10*time.Second, func() bool { return endpointsByName(t, c)["partner-erp"].Dead == 2 }, "two dead letters")

	ctx := browserContext(t, browser)

	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:s3cret"))
	erp := `tr[data-endpoint="partner-erp"]`
	text := browserText(t, ctx)
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.WaitVisible(chromedp.CSS(erp)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-route="totvs_crm"]`)),
	)
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, c.Log())
	}
	endpointsText, inboundText := text(`#endpoints tbody`), text(`#inbound tbody`)
	deadCount := eval(`String(document.querySelectorAll("#dead tbody tr").length)`)
	// Test: the sink answers 503 and the page says so.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(erp+` button.test`)), chromedp.WaitVisible(chromedp.CSS(erp+` .result`))); err != nil {
		t.Fatalf("click Test: %v", err)
	}
	testResult := text(erp + ` .result`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"partner-erp", "analytics", "contact.* deal.*", "active"} {
		if !strings.Contains(endpointsText, want) {
			t.Errorf("endpoints table lacks %q:\n%s", want, endpointsText)
		}
	}
	if !strings.Contains(inboundText, "totvs_crm") || !strings.Contains(inboundText, "unauthorized: 1") {
		t.Errorf("inbound table: %s", inboundText)
	}
	if deadCount != "2" {
		t.Errorf("dead letters shown: %s, want 2", deadCount)
	}
	if !strings.Contains(testResult, "503") || !strings.Contains(testResult, "non-2xx") {
		t.Errorf("test result: %q", testResult)
	}
	saveShot(t, "dashboard.png", shot)
	if out := os.Getenv("DASHBOARD_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Retry one dead letter after the partner is fixed: the page shows one left, and the
	// partner received it.
	sink.set("/erp", 200)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#dead tbody tr:first-child button.retry`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#dead tbody tr").length === 1 && document.querySelector('`+erp+`').textContent.includes("HTTP 200")`,
			chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		t.Fatalf("retry in the browser: %v", err)
	}
	if left := eval(`String(document.querySelectorAll("#dead tbody tr").length)`); left != "1" || sink.count("/erp") < 4 { // 2 failed attempts, 1 test, 1 retry
		t.Fatalf("after Retry: %s dead letters shown, sink got %d", left, sink.count("/erp"))
	}

	// On a phone: rows become cards and nothing scrolls sideways.
	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(erp)),
	)
	if err != nil {
		t.Fatalf("phone: %v", err)
	}
	if overflow := eval(`String(document.documentElement.scrollWidth > window.innerWidth + 1)`); overflow != "false" {
		t.Fatalf("phone layout overflows sideways")
	}
	if d := eval(`getComputedStyle(document.querySelector("#endpoints thead")).display`); d != "none" {
		t.Fatalf("phone layout: table head display %q, want cards", d)
	}

	// Actions need the dashboard's header: a cross-site form post is refused.
	code, _, rb := send(t, c.Base()+"/ops/api/endpoints/analytics/test", nil, "Authorization", auth, "Content-Type", "application/x-www-form-urlencoded")
	if code != 403 {
		t.Fatalf("action without the dashboard header: %d %s", code, rb)
	}
}

const longErrorCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint partner-with-a-long-name {
			url http://127.0.0.1:1/webhooks/receive/partner-erp-integration/v2?tenant=acme-industria-e-comercio
			retry off
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
`

// A long last error ("refused: nothing listens at that address and port") and a long URL
// must not push the action buttons out of view on ordinary desktop widths: every button of
// the endpoints and dead letters is fully inside the viewport and its scroll box.
func TestDashboardLongErrorsKeepActionsInView(t *testing.T) {
	browser := chromiumPath(t)
	c := startCaddy(t, longErrorCaddyfile)
	if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"id":7}`), "Webhook-Event-Type", "deal.won"); code != 202 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	testwait.Until(t, 10*time.Second, func() bool { return endpointsByName(t, c)["partner-with-a-long-name"].Dead == 1 }, "a dead letter")

	ctx := browserContext(t, browser)
	// Every button in #endpoints and #dead, with the open attempts list too: where it
	// sticks out of the viewport or of its scroll box, by how much.
	const clipped = `(() => {
		document.querySelectorAll("details").forEach(d => d.open = true);
		const out = [];
		for (const b of document.querySelectorAll("#endpoints button, #dead button")) {
			const r = b.getBoundingClientRect(), box = b.closest(".scroll").getBoundingClientRect();
			const right = Math.min(window.innerWidth, box.right);
			if (r.left < Math.max(0, box.left) || r.right > right + 0.5 || r.width === 0)
				out.push(b.textContent + " at " + Math.round(r.left) + "–" + Math.round(r.right) + " of " + Math.round(right));
		}
		return JSON.stringify(out);
	})()`
	for _, width := range []int64{1280, 1600} {
		var got string
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(width, 900),
			chromedp.Navigate(c.Base()+"/ops/?view=all"),
			chromedp.WaitVisible(chromedp.CSS(`#dead tbody tr button.retry`)),
			chromedp.Poll[chromedp.Void](`document.querySelector("#endpoints tbody").textContent.includes("refused")`, chromedp.WithPollingTimeout(10*time.Second)),
		)
		if err != nil {
			t.Fatalf("%d px: %v", width, err)
		}
		got, err = chromedp.Run(ctx, chromedp.Evaluate[string](clipped))
		if err != nil {
			t.Fatal(err)
		}
		if got != "[]" {
			t.Errorf("at %d×900, action buttons out of view: %s", width, got)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.querySelectorAll("#endpoints button, #dead button").length)`)); n != "5" {
			t.Errorf("at %d px: %s buttons, want Test, Retry dead, Open breaker, Resend latest and the dead letter's Retry", width, n)
		}
	}
}

// The feeds panel: pending and served counts, the last caller, and Requeue.
func TestDashboardFeedsPanel(t *testing.T) {
	browser := chromiumPath(t)
	cfg := strings.Replace(strings.Replace(feedCaddyfile, "{STORE}", "store embedded", 1),
		"\thandle /publish {", "\thandle /ops/* {\n\t\twebhook_dashboard\n\t}\n\thandle /publish {", 1)
	c := startCaddy(t, cfg, "RUBEUS_PASS=rb-pass")
	publishRecords(t, c, 0, 5, "d1")
	if got := pull(t, c); len(got) != 5 {
		t.Fatalf("pull: %d", len(got))
	}
	publishRecords(t, c, 5, 7, "d2")
	ctx := browserContext(t, browser)
	row := `tr[data-feed="rubeus-contatos"]`
	err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rubeus-contatos", "2", "5", "HTTP 200 · 5 records", "127.0.0.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("feeds row lacks %q: %s", want, text)
		}
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button.requeue`)),
		// The page refreshes once the requeue answered: pending is then all 7.
		chromedp.Poll[chromedp.Void](`document.querySelector('`+row+` td[data-label="Pending"]').textContent === "7"`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("requeue in the browser: %v", err)
	}
	if got := pull(t, c); len(got) != 7 {
		t.Fatalf("after Requeue in the dashboard, a call got %d records, want all 7", len(got))
	}
}

// Subscriptions appear beside the configured endpoints, with their actions and a delete.
func TestDashboardSubscriptions(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		endpoint erp {
			url `+be.URL+`/erp
			allow_private
		}
		subscriptions {
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /ops/* {
		webhook_dashboard
	}
}
`)
	code, s := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+be.URL+`/partner","events":["deal.*"],"description":"Partner CRM"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, s)
	}
	id := s["id"].(string)
	row := `tr[data-endpoint="` + id + `"]`
	ctx := browserContext(t, browser)
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-endpoint="erp"]`)),
	)
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, c.Log())
	}
	rowText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil {
		t.Fatal(err)
	}
	// No webhook_receive route has received anything: the route selector says so, rather
	// than showing an empty box.
	if sel, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const s = document.getElementById("req-route");
		return s.options.length + "|" + (s.options[0] ? s.options[0].textContent : "") + "|" + s.disabled + "|" + Math.round(s.getBoundingClientRect().width); })()`)); !strings.HasPrefix(sel, "1|no route") || !strings.Contains(sel, "|true|") {
		t.Errorf("the empty route selector: %s (options|first|disabled|width)", sel)
	}
	for _, want := range []string{"subscription", "Partner CRM", "deal.*", "Test", "Delete"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("subscription row lacks %q: %s", want, rowText)
		}
	}
	// Its actions work like an endpoint's: Test reaches the target.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button.test`)), chromedp.WaitVisible(chromedp.CSS(row+` .result`))); err != nil {
		t.Fatalf("click Test: %v", err)
	}
	if len(byPath(be.Got(), "/partner")) != 1 {
		t.Fatalf("the test did not reach the subscription's target: %v", be.Got())
	}
	// Delete takes two clicks; then the row is gone and so is the subscription.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` button.delete`)),
		chromedp.WaitVisible(chromedp.CSS(row+` button.delete.armed`)),
	)
	if err != nil {
		t.Fatalf("arm delete: %v", err)
	}
	if code, _ := call(t, "GET", c.AdminURL()+"/webhooks/subscriptions/"+id, ""); code != 200 {
		t.Fatalf("one click deleted it: %d", code)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` button.delete.armed`)),
		chromedp.Poll[chromedp.Void](`!document.querySelector('`+row+`') && !!document.querySelector('tr[data-endpoint="erp"]')`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("delete in the browser: %v", err)
	}
	if code, _ := call(t, "GET", c.AdminURL()+"/webhooks/subscriptions/"+id, ""); code != 404 {
		t.Fatalf("after delete: %d", code)
	}
}

// The request log's view: filter by outcome, a refusal's problem with its pointers, no
// credential, and Replay reaching the backend.
func TestDashboardRequestLog(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key {env.K_PLOOMES}
		}
		reverse_proxy `+be.Addr+`
	}
	handle /ops/* {
		webhook_dashboard
	}
}
`, "K_PLOOMES=pl-dash-s3cret")
	good := sample(t, "ploomes/contact-update.json")
	if code, _, rb := send(t, c.Base()+"/ploomes", good, "X-Ploomes-Validation-Key", "pl-dash-s3cret"); code != 200 {
		t.Fatalf("accepted: %d %s", code, rb)
	}
	if code, _, _ := send(t, c.Base()+"/ploomes", []byte(`{"Action":"Win","Entity":"Deal","New":{"Id":"x"}}`), "X-Ploomes-Validation-Key", "pl-dash-s3cret"); code != 422 {
		t.Fatalf("refused: %d", code)
	}
	ctx := browserContext(t, browser)
	rows := `#requests tbody tr`
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("`+rows+`").length === 2`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, c.Log())
	}
	// The refusal (newest, first row): its problem and pointer, headers without the key.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(rows+`:first-child`)), chromedp.WaitVisible(chromedp.CSS(`#req-detail li.violation`))); err != nil {
		t.Fatalf("open the refusal: %v", err)
	}
	detail, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#req-detail`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schema_violation", "HTTP 422", "does not match the schema", "/New/Id", "X-Ploomes-Validation-Key: REDACTED", `"Id":"x"`} {
		if !strings.Contains(detail, want) {
			t.Errorf("the refusal's detail lacks %q:\n%s", want, detail)
		}
	}
	if strings.Contains(detail, "pl-dash-s3cret") {
		t.Fatal("the credential is shown")
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#req-detail button.replay").length`)); n != 0 {
		t.Fatal("a refusal offers Replay")
	}
	// Filter: only the refused one.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#req-outcome`), "refused"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("req-outcome").dispatchEvent(new Event("change"))`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("`+rows+`").length === 1`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SetValue(chromedp.CSS(`#req-outcome`), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("req-outcome").dispatchEvent(new Event("change"))`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("`+rows+`").length === 2`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("filter by outcome: %v", err)
	}
	// Replay the accepted one, skipping dedupe: the backend gets it again.
	before := be.Count()
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(rows+`:last-child`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail button.replay-force`)),
		chromedp.Click(chromedp.CSS(`#req-detail button.replay-force`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#req-detail .result") && document.querySelector("#req-detail .result").textContent.includes("replayed: accepted")`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("replay in the browser: %v", err)
	}
	if be.Count() != before+1 {
		t.Fatalf("the backend got %d requests after the replay, want %d", be.Count(), before+1)
	}
}

// The stale-event guard in the dashboard: a request shows its record's newest value; a
// forced replay of an older event is not sent until a second, explicit click that names
// the newest value; Clear forgets the record's value.
func TestDashboardOrderRecord(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		reverse_proxy `+be.Addr+`
	}
	handle /ops/* {
		webhook_dashboard
	}
}
`, totvsKey)
	row := "cdcdcdcd-0000-4000-8000-0000000000cd"
	for i, ts := range []string{"2025-03-11T09:15:00-03:00", "2025-03-11T09:20:00-0300"} {
		if code, _, rb := send(t, c.Base()+"/totvs", totvsAt(t, uuid(600+i), row, ts), "X-Api-Key", "tk-456"); code != 200 {
			t.Fatalf("event %d: %d %s", i, code, rb)
		}
	}
	ctx := browserContext(t, browser)
	rows := `#requests tbody tr`
	text := func(sel string) string {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return s
	}
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("`+rows+`").length === 2`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Click(chromedp.CSS(rows+`:last-child`)), // the older event
		chromedp.Poll[chromedp.Void](`(document.querySelector("#req-detail .order-newest") || {}).textContent?.includes("2025-03-11T12:20:00Z")`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("the record's value in the dashboard: %v\n%s", err, text(`#req-detail`))
	}
	if d := text(`#req-detail .order`); !strings.Contains(d, row) || !strings.Contains(d, "2025-03-11T09:15:00-03:00") {
		t.Fatalf("the order row: %q", d)
	}
	n := be.Count()
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#req-detail button.replay-force`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail button.replay-older`)),
	)
	if err != nil {
		t.Fatalf("the forced replay's confirmation: %v\n%s", err, text(`#req-detail`))
	}
	if r := text(`#req-detail .result`); !strings.Contains(r, "older than its record's newest value (2025-03-11T12:20:00Z)") || be.Count() != n {
		t.Fatalf("before confirming: %q, backend %d → %d", r, n, be.Count())
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#req-detail button.replay-older`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#req-detail .result").textContent.includes("replayed: accepted")`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil || be.Count() != n+1 || !strings.Contains(text(`#req-detail .result`), "older") {
		t.Fatalf("the confirmed replay: %v, backend %d → %d, %q", err, n, be.Count(), text(`#req-detail .result`))
	}
	// The replay is a new request: the list above the detail grows by a row, which moves
	// the button; clicks land where the page has settled, as a user's would.
	err = chromedp.Do(ctx,
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("`+rows+`").length === 3`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail button.order-clear`)),
		chromedp.Click(chromedp.CSS(`#req-detail button.order-clear`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail button.order-clear.armed`)),
		chromedp.Click(chromedp.CSS(`#req-detail button.order-clear`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#req-detail .order-newest").textContent === "none recorded"`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("Clear in the dashboard: %v\n%s", err, text(`#req-detail`))
	}
	if code, got := adminDo(t, c, http.MethodGet, orderPath("totvs_crm", row)); code != 200 || got["recorded"] != false {
		t.Fatalf("after Clear in the dashboard: %d %v", code, got)
	}
	// The dashboard's DELETE needs its header, like every action.
	req, _ := http.NewRequest(http.MethodDelete, c.Base()+"/ops/api"+orderPath("totvs_crm", row)[len("/webhooks"):], nil)
	req.Header.Set("Origin", "http://attacker.example")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Fatalf("a cross-site DELETE through the dashboard: %v %v", res.StatusCode, err)
	}
	// An event dated far ahead is handed on, not recorded: the Inbound table counts it
	// under its own column, not as stale or rejected.
	if code, _, rb := send(t, c.Base()+"/totvs", totvsAt(t, uuid(650), "efefefef-0000-4000-8000-0000000000ef", "2262-04-11T00:00:00Z"), "X-Api-Key", "tk-456"); code != 200 {
		t.Fatalf("the far-future event: %d %s", code, rb)
	}
	cell := `#inbound tbody tr[data-route="totvs_crm"] td[data-label="Ahead"]`
	err = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`(document.querySelector('`+cell+`') || {}).textContent === "1"`, chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("the Inbound table's Ahead count: %v: %q", err, text(`#inbound tbody`))
	}
}

// Transforms in the dashboard: a route's and an endpoint's expressions (and an endpoint's
// filter) are shown; an endpoint whose transform fails says how often and why, and its
// held delivery names the transform's error; a request's detail shows the transformed body
// beside the original, and the transform's stage time.
func TestDashboardTransforms(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint erp {
			url `+be.URL+`/erp
			events contact.*
			retry off
			allow_private
			filter `+"`data.New.Id > 0`"+`
			transform `+"`{\"id\": body.New.Missing}`"+`
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key {env.K_PLOOMES}
			transform `+"`{\"contact\": body.New.Id, \"name\": body.New.LegalName}`"+`
		}
		reverse_proxy `+be.Addr+`
	}
	handle /publish {
		webhook_publish
	}
	handle /ops/* {
		webhook_dashboard
	}
}
`, "K_PLOOMES=pl-dash-s3cret")
	if code, _, rb := send(t, c.Base()+"/ploomes", sample(t, "ploomes/contact-update.json"), "X-Ploomes-Validation-Key", "pl-dash-s3cret"); code != 200 {
		t.Fatalf("accepted: %d %s", code, rb)
	}
	if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"New":{"Id":7}}`), "Webhook-Event-Type", "contact.updated"); code != 202 {
		t.Fatalf("publish: %d %s", code, rb)
	}
	ctx := browserContext(t, browser)
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#requests tbody tr").length === 1 && document.querySelectorAll("#dead tbody tr").length === 1 && !!document.querySelector("#endpoints .transform-failures")`,
			chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		t.Fatalf("browser: %v\n%s", err, c.Log())
	}
	text := browserText(t, ctx)
	// The expressions are folded to their first line; a click shows the whole.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#endpoints details.transform summary`)), chromedp.WaitVisible(chromedp.CSS(`#endpoints details.transform pre`))); err != nil {
		t.Fatalf("open the endpoint's transform: %v", err)
	}
	ep := text(`#endpoints tr[data-endpoint=erp]`)
	// Two failures: at enqueue, and at the one attempt (retry off), which sent nothing.
	for _, want := range []string{"filter: data.New.Id > 0", `transform: {"id": body.New.Missing}`, "transform failed 2×", "no such key: Missing"} {
		if !strings.Contains(ep, want) {
			t.Errorf("the endpoint's row lacks %q:\n%s", want, ep)
		}
	}
	if dead := text(`#dead tbody tr`); !strings.Contains(dead, "transform failed: ") || !strings.Contains(dead, "Missing") {
		t.Errorf("the held delivery does not name its transform's error:\n%s", dead)
	}
	if in := text(`#inbound tr[data-route=ploomes]`); !strings.Contains(in, `transform: {"contact": body.New.Id, "name": body.New.LegalName}`) {
		t.Errorf("the route's row lacks its transform:\n%s", in)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#requests tbody tr`)), chromedp.WaitVisible(chromedp.CSS(`#req-detail pre.transformed`))); err != nil {
		t.Fatalf("open the request: %v", err)
	}
	detail := text(`#req-detail`)
	// The request as received (its body and its headers), and what was handed on.
	for _, want := range []string{"· transform ", "Transformed body · 58 bytes", `"contact":`, `"Action": "Update"`, "Content-Length: 608"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the request's detail lacks %q:\n%s", want, detail)
		}
	}
	if transformed := text(`#req-detail pre.transformed`); strings.Contains(transformed, "Action") || !strings.Contains(transformed, `"name":`) {
		t.Errorf("the transformed body is not the transform's: %s", transformed)
	}
}

// The dashboard shows an endpoint's circuit breaker: open, why and when it probes; its
// button closes it (the backlog drains) and another holds it open by hand.
func TestDashboardBreaker(t *testing.T) {
	browser := chromiumPath(t)
	sink := startSickSink(t)
	// A long cooldown: the breaker stays open until the button closes it.
	cfg := strings.NewReplacer("{STORE}", "store embedded", "{SINK}", sink.URL, "cooldown 2s", "cooldown 10m", "max_cooldown 4s", "max_cooldown 10m",
		"\thandle /publish {", "\thandle /ops/* {\n\t\twebhook_dashboard\n\t}\n\thandle /publish {").Replace(breakerCaddyfile)
	c := startCaddy(t, cfg)
	for i := range 4 {
		publish(t, c, "order.created", fmt.Sprintf(`{"n":%d}`, i))
	}
	testwait.Until(t, 15*time.Second, func() bool { b, _, _ := breakerOf(t, c, "app"); return b.State == "open" }, "the breaker to open")
	ctx := browserContext(t, browser)
	text := browserText(t, ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.Poll[chromedp.Void](`!!document.querySelector("#endpoints tr[data-endpoint=app] .breaker-state")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
		t.Fatalf("browser: %v\n%s", err, page)
	}
	row := text(`#endpoints tr[data-endpoint=app]`)
	for _, want := range []string{"breaker open", "3 consecutive failed attempts (last: HTTP 503)", "probe ", "Close breaker"} {
		if !strings.Contains(row, want) {
			t.Errorf("the endpoint's row lacks %q:\n%s", want, row)
		}
	}
	sink.down.Store(false)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#endpoints tr[data-endpoint=app] button.breaker-close`)),
		chromedp.Poll[chromedp.Void](`!!document.querySelector("#endpoints tr[data-endpoint=app] button.breaker-open")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("close the breaker: %v", err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(sink.accepted()) == 4 }, "the backlog after the close")
	if got := fmt.Sprint(sink.accepted()); got != `[{"n":0} {"n":1} {"n":2} {"n":3}]` {
		t.Fatalf("delivered %s, want oldest first", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#endpoints tr[data-endpoint=app] button.breaker-open`)),
		chromedp.Poll[chromedp.Void](`!!document.querySelector("#endpoints tr[data-endpoint=app] button.breaker-close")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("open the breaker by hand: %v", err)
	}
	if row := text(`#endpoints tr[data-endpoint=app]`); !strings.Contains(row, "held open by an operator") {
		t.Errorf("held by hand, the row says:\n%s", row)
	}
	if b, _, _ := breakerOf(t, c, "app"); b.State != "open" || !b.Manual {
		t.Fatalf("after the button: %+v", b)
	}
}
