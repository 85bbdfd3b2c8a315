package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/signature"
)

// The findings of the outside security review and the first-time user (issue 11), each
// reproduced through the built Caddy as it was observed.

const slowBodyCaddyfile = `{
	{GLOBAL}
	metrics
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	handle /github {
		webhook_receive github {
			auth hmac github {env.GH_SECRET}
		}
		reverse_proxy {BACKEND}
	}
	handle /open {
		webhook_receive {
			auth none
		}
		reverse_proxy {BACKEND}
	}
}
`

var heapAlloc = regexp.MustCompile(`(?m)^go_memstats_heap_alloc_bytes ([0-9.e+]+)$`)

// heapBytes reads the Go heap in use from Caddy's own metrics.
func heapBytes(t *testing.T, c *Caddy) float64 {
	t.Helper()
	m := heapAlloc.FindSubmatch(metricsText(t, c))
	if m == nil {
		t.Fatalf("no go_memstats_heap_alloc_bytes in the metrics")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var inFlight = regexp.MustCompile(`(?m)^caddy_http_requests_in_flight\{[^}]*\} ([0-9.e+]+)$`)

// requestsInFlight sums Caddy's own in-flight request gauge over its routes (the
// Caddyfile must enable metrics).
func requestsInFlight(t *testing.T, c *Caddy) int {
	t.Helper()
	n := 0.0
	for _, m := range inFlight.FindAllSubmatch(metricsText(t, c), -1) {
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		n += v
	}
	return int(n)
}

// Sockets that announce a 5 MiB body and send 6 bytes, on an HMAC route (the body is read
// before the signature can be checked) and on an open route: the memory they cost must
// follow the bytes that arrived, not the length they announced.
func TestAnnouncedBodiesDoNotReserveMemory(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, strings.ReplaceAll(slowBodyCaddyfile, "{BACKEND}", be.Addr), "GH_SECRET=gh-secret")
	idle := heapBytes(t, c)
	const sockets = 400 // per route; 800 in all, as the review sent
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for _, path := range []string{"/github", "/open"} {
		for i := 0; i < sockets; i++ {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
				"X-Hub-Signature-256: sha256=00\r\nX-GitHub-Delivery: d-%d\r\nContent-Length: 5242880\r\n\r\n{\"a\":1", path, i)
		}
	}
	// Caddy counts a request in flight from the moment its route runs: once all 800 are,
	// every handler is in webhook_receive, blocked reading its body.
	testwait.Until(t, 60*time.Second, func() bool { return requestsInFlight(t, c) == 2*sockets },
		fmt.Sprintf("all %d requests in flight at Caddy", 2*sockets))
	peak := heapBytes(t, c)
	grew := (peak - idle) / (1 << 20)
	record(t, "hostile: 800 sockets announce Content-Length 5 MiB and send 6 bytes (HMAC and open routes)",
		fmt.Sprintf("heap %.0f MB idle, %.0f MB with all 800 open", idle/(1<<20), peak/(1<<20)), "nothing")
	if grew > 100 {
		t.Fatalf("the heap grew by %.0f MB for %d sockets that sent 6 bytes each (limit 100 MB)", grew, 2*sockets)
	}
	for _, conn := range conns {
		conn.Close()
	}
	conns = nil
	// The routes still serve.
	if st, _, _ := send(t, c.Base()+"/open", []byte(`{"ok":true}`)); st != 200 {
		t.Fatalf("after the attack: %d\n%s", st, c.Log())
	}
}

const twoTenantsCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	handle /a {
		webhook_receive {A} {
			{XA}
			auth header X-Api-Key tenant-a
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
	handle /b {
		webhook_receive {B} {
			{XB}
			auth header X-Api-Key tenant-b
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
}
`

// twoTenants is a config with two routes: each a preset (or "") and extra option lines.
func twoTenants(backend, presetA, extraA, presetB, extraB string) string {
	return strings.NewReplacer("{BACKEND}", backend, "{A}", presetA, "{XA}", extraA,
		"{B}", presetB, "{XB}", extraB).Replace(twoTenantsCaddyfile)
}

// Two routes never share dedupe ids (or a metrics row) by accident: a config where they
// would is refused with a message that says how to fix it; sharing on purpose takes a
// dedupe_scope on both.
func TestRoutesDoNotShareADedupeScopeByAccident(t *testing.T) {
	refused := []struct{ what, presetA, extraA, presetB, extraB, says string }{
		{"no preset, no name", "", "", "", "", `both named "webhook"`},
		{"same preset, no name", "standard", "", "standard", "", `both named "standard"`},
		{"same explicit name", "", "name t", "", "name t", `both named "t"`},
		{"a name equal to another's scope", "", "name x", "", "name y\n\t\t\tdedupe_scope x", `dedupe scope "x"`},
	}
	for _, c := range refused {
		cfg := fillConfig(twoTenants("127.0.0.1:1", c.presetA, c.extraA, c.presetB, c.extraB), 18080, 12019, "")
		out, err := runCmd(caddyBin, "validate", "--config", writeTemp(t, cfg), "--adapter", "caddyfile")
		out = strings.ReplaceAll(out, `\"`, `"`) // the error is inside a JSON log line
		if err == nil || !strings.Contains(out, c.says) {
			t.Errorf("%s: want the config refused saying %s, got err=%v:\n%s", c.what, c.says, err, lastLines(out, 3))
		}
	}

	// Named routes: the same id reaches the backend once per tenant.
	be := startBackend(t)
	c := startCaddy(t, twoTenants(be.Addr, "", "name tenant-a", "", "name tenant-b"))
	ev := []byte(`{"id":"evt-1"}`)
	for _, tenant := range []string{"a", "b"} {
		code, h, body := send(t, c.Base()+"/"+tenant, ev, "X-Api-Key", "tenant-"+tenant)
		if code != 200 || h.Get("Webhook-Duplicate") != "" {
			t.Fatalf("tenant %s: %d dup=%q %s", tenant, code, h.Get("Webhook-Duplicate"), body)
		}
	}
	if be.Count() != 2 {
		t.Fatalf("backend got %d events, want one per tenant", be.Count())
	}
	var inbound []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/inbound", &inbound)
	if len(inbound) != 2 {
		t.Fatalf("want one /webhooks/inbound row per route, got %v", inbound)
	}

	// Sharing on purpose: the same dedupe_scope on both routes.
	be2 := startBackend(t)
	c2 := startCaddy(t, twoTenants(be2.Addr, "", "name tenant-a\n\t\t\tdedupe_scope shared", "", "name tenant-b\n\t\t\tdedupe_scope shared"))
	send(t, c2.Base()+"/a", ev, "X-Api-Key", "tenant-a")
	if code, h, _ := send(t, c2.Base()+"/b", ev, "X-Api-Key", "tenant-b"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("shared scope: want the second a duplicate, got %d dup=%q", code, h.Get("Webhook-Duplicate"))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

const storeFileCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded {FILE}
	}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
		}
		reverse_proxy {BACKEND}
	}
}
`

// A truncated embedded store file is a config error, never a crash: at start, and on a
// reload, where the running config keeps serving.
func TestTruncatedStoreFileIsAConfigError(t *testing.T) {
	be := startBackend(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.db"), filepath.Join(dir, "bad.db")
	cfg := func(file string) string {
		return strings.NewReplacer("{FILE}", file, "{BACKEND}", be.Addr).Replace(storeFileCaddyfile)
	}
	// Make a real store file with some events in it, then cut it.
	c := startCaddy(t, cfg(bad), totvsKey)
	for i := 0; i < 50; i++ {
		send(t, c.Base()+"/totvs", totvsEvent(t, fmt.Sprintf("11111111-1111-4111-8111-%012d", i)), "X-Api-Key", "tk-456")
	}
	c.Stop()
	fi, err := os.Stat(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(bad, 8192); err != nil { // both meta pages survive, the rest is gone
		t.Fatal(err)
	}

	// At start: an error that names the file, not a SIGSEGV.
	t.Setenv("TOTVS_KEY", "tk-456")
	port, admin := freePort(t), freePort(t)
	startCfg := fillConfig(cfg(bad), port, admin, "")
	out, err := runCmd(caddyBin, "run", "--config", writeTemp(t, startCfg), "--adapter", "caddyfile")
	if err == nil || strings.Contains(out, "SIGSEGV") || strings.Contains(out, "SIGBUS") || !strings.Contains(out, "truncated") {
		t.Fatalf("start on a file cut from %d to 8192 bytes: want a config error saying it is truncated, got %v:\n%s", fi.Size(), err, lastLines(out, 30))
	}

	// On a reload: the load is refused and the running config keeps serving.
	c2 := startCaddy(t, cfg(good), totvsKey)
	adapted, err := runCmd(caddyBin, "adapt", "--config", writeTemp(t, fillConfig(cfg(bad), c2.Port, c2.Admin, "")), "--adapter", "caddyfile")
	if err != nil {
		t.Fatal(err, adapted)
	}
	resp, err := http.Post(c2.AdminURL()+"/load", "application/json", strings.NewReader(string(jsonOnly(adapted))))
	if err != nil {
		t.Fatalf("reload to the truncated file killed the server: %v\n%s", err, lastLines(c2.Log(), 5))
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || !strings.Contains(string(msg), "truncated") {
		t.Fatalf("reload to the truncated file: %d %s", resp.StatusCode, msg)
	}
	if code, _, body := send(t, c2.Base()+"/totvs", totvsEvent(t, "22222222-2222-4222-8222-222222222222"), "X-Api-Key", "tk-456"); code != 200 {
		t.Fatalf("the running config stopped serving: %d %s\n%s", code, body, lastLines(c2.Log(), 5))
	}
	record(t, "embedded store file truncated (both meta pages intact), at start and on a reload",
		"config error naming the file; on reload the load is refused and the running config keeps serving", "nothing that was in the running config")
}

const rebindCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint partner {
			url http://127.0.0.1:1/hook
			allow_private
		}
	}
}
http://:{PORT} {
	bind 127.0.0.1
	handle /listed/* {
		webhook_dashboard {
			allowed_hosts ops.example.com
		}
	}
	webhook_dashboard
}
`

// rawRequest sends a request with the given Host header (a page that DNS-rebinds its own
// name to 127.0.0.1 makes the browser send exactly that) and returns the status.
func rawRequest(t *testing.T, c *Caddy, method, path, host string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequest(method, c.Base()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// DNS rebinding: a page on attacker.example that resolves to 127.0.0.1 reaches the
// dashboard with Host: attacker.example and a matching Origin. Only loopback names and the
// listed hosts are served, for reads and actions alike.
func TestDashboardRefusesForeignHosts(t *testing.T) {
	c := startCaddy(t, rebindCaddyfile)
	port := itoa(c.Port)
	action := func(path, host string) int {
		return rawRequest(t, c, http.MethodPost, path, host, "X-Hookgate-Dashboard", "1", "Origin", "http://"+host)
	}
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.attacker.example:" + port, "ops.example.com:" + port} {
		for _, path := range []string{"/", "/api/endpoints", "/api/deliveries?state=dead"} {
			if st := rawRequest(t, c, http.MethodGet, path, host); st != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d, want 403", path, host, st)
			}
		}
		if st := action("/api/endpoints/partner/retry", host); st != http.StatusForbidden {
			t.Errorf("action with Host %s: %d, want 403", host, st)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "localhost"} {
		if st := rawRequest(t, c, http.MethodGet, "/api/endpoints", host); st != http.StatusOK {
			t.Errorf("GET with Host %s: %d, want 200", host, st)
		}
		if st := action("/api/endpoints/partner/retry", host); st != http.StatusOK {
			t.Errorf("action with Host %s: %d, want 200", host, st)
		}
	}
	// allowed_hosts: the listed name is served, with or without the port.
	for _, host := range []string{"ops.example.com", "OPS.example.com:" + port} {
		if st := rawRequest(t, c, http.MethodGet, "/listed/api/endpoints", host); st != http.StatusOK {
			t.Errorf("listed host %s: %d, want 200", host, st)
		}
	}
	if st := rawRequest(t, c, http.MethodGet, "/listed/api/endpoints", "attacker.example"); st != http.StatusForbidden {
		t.Errorf("unlisted host on the listed route: %d, want 403", st)
	}
}

const queryTokenCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint partner {
			url https://{SINK}/hook?key={env.PARTNER_TOKEN}&v=2
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

// A token in an endpoint URL's query never leaves the process: not in the test diagnosis,
// the attempt errors of the admin API and the dashboard, nor the dead-letter log line. (Go's
// URL errors carry the whole URL; this endpoint speaks plain HTTP to an https URL, so every
// attempt fails with one.)
func TestEndpointQueryTokenNeverLeaks(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	sink := startBackend(t)
	c := startCaddy(t, strings.Replace(queryTokenCaddyfile, "{SINK}", sink.Addr, 1), "PARTNER_TOKEN="+token)
	leaks := func(where string, b []byte) {
		t.Helper()
		if strings.Contains(string(b), token) {
			t.Errorf("%s holds the URL's token:\n%s", where, b)
		}
	}
	code, diag := adminPost(t, c.AdminURL()+"/webhooks/endpoints/partner/test")
	b, _ := json.Marshal(diag)
	if code != 200 || !strings.Contains(string(b), "REDACTED") {
		t.Errorf("test: %d %s (want a diagnosis naming the redacted URL)", code, b)
	}
	leaks("POST /webhooks/endpoints/partner/test", b)

	if st, _ := postJSON(c.Base()+"/publish?type=deal.won", []byte(`{"deal":1}`)); st != 202 {
		t.Fatalf("publish: %d", st)
	}
	var dead []map[string]any
	testwait.Until(t, 10*time.Second, func() bool {
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=dead", &dead)
		return len(dead) == 1
	}, "a dead letter")

	for _, url := range []string{c.AdminURL() + "/webhooks/deliveries?state=dead", c.Base() + "/ops/api/deliveries?state=dead",
		c.AdminURL() + "/webhooks/endpoints", c.Base() + "/ops/api/endpoints"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "REDACTED") && strings.Contains(url, "deliveries") {
			t.Errorf("%s: want the attempt error with the URL redacted:\n%s", url, b)
		}
		leaks(url, b)
	}
	testwait.Until(t, 10*time.Second, func() bool { return strings.Contains(c.Log(), "dead-lettered") }, "the dead-letter log line")
	leaks("Caddy's log", []byte(c.Log()))
}

const openIDCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive {
		auth none
		event_id json:/id
	}
	respond 200
}
`

// Numbers past float64's range are refused (not only exponents past 400), and the duplicate
// answer is JSON whatever the id holds.
func TestNumbersAndDuplicateAnswersAreExact(t *testing.T) {
	c := startCaddy(t, openIDCaddyfile)
	for _, n := range []string{"1e309", "1.8e308", "-2e308", "1e400", "123456789e301"} {
		body := []byte(`{"id":"n","v":` + n + `}`)
		code, _, rb := send(t, c.Base(), body)
		p := map[string]any{}
		_ = json.Unmarshal(rb, &p)
		if code != 400 || p["offset"] != float64(strings.Index(string(body), n)) {
			t.Errorf("%s: %d %s, want 400 with the number's offset", n, code, rb)
		}
	}
	for _, n := range []string{"1.7e308", "1e-400", "-1.7976931348623157e308"} {
		if code, _, rb := send(t, c.Base(), []byte(`{"id":"ok-`+n+`","v":`+n+`}`)); code != 200 {
			t.Errorf("%s is a float64: %d %s", n, code, rb)
		}
	}
	body := []byte(`{"id":"a\u0001b\"c\u007f\u2028"}`)
	send(t, c.Base(), body)
	code, h, rb := send(t, c.Base(), body)
	var dup struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(rb, &dup); code != 200 || h.Get("Webhook-Duplicate") != "true" || err != nil ||
		dup.ID != "a\x01b\"c\x7f\u2028" || !dup.Duplicate {
		t.Fatalf("duplicate answer %d %q: not the id as JSON (%v)", code, rb, err)
	}
}

// What the senders' own libraries send: Svix-hosted Standard Webhooks senders use svix-*
// header names (and the standard preset takes svix-id as the event id); Stripe's header may
// carry a v1 entry that is not a SHA-256 beside the valid one; Shopify and Slack have
// presets with their event ids.
func TestSignedSendersAsTheirLibrariesSend(t *testing.T) {
	stdKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-new-key"))
	env := []string{"STD_OLD=" + stdKey, "STD_NEW=" + stdKey, "GH_SECRET=gh", "STRIPE_SECRET=whsec_stripe",
		"SHOPIFY_SECRET=shop", "SLACK_SECRET=slack", "GEN_SECRET=gen"}
	be := startBackend(t)
	c := startCaddy(t, strings.ReplaceAll(hmacCaddyfile, "{BACKEND}", be.Addr), env...)
	body := []byte(`{"type":"invoice.paid","id":"evt_svix_1"}`)
	std, err := signature.Sign(signature.Config{Scheme: "standard", Secrets: []string{stdKey}},
		signature.Message{ID: "msg_svix_1", Time: time.Now(), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	svix := []string{"svix-id", "msg_svix_1", "svix-timestamp", std.Get("Webhook-Timestamp"), "svix-signature", std.Get("Webhook-Signature")}
	if code, _, rb := send(t, c.Base()+"/standard", body, svix...); code != 200 {
		t.Fatalf("svix-* headers: %d %s", code, rb)
	}
	if code, h, _ := send(t, c.Base()+"/standard", body, svix...); code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("svix-* resend: %d dup=%q: svix-id is not the event id", code, h.Get("Webhook-Duplicate"))
	}
	if code, _, _ := send(t, c.Base()+"/standard", append(body, ' '), svix...); code != 401 {
		t.Fatalf("svix-* headers, tampered body: %d", code)
	}

	sb := []byte(`{"id":"evt_stripe_1","object":"event"}`)
	st, _ := signature.Sign(signature.Config{Scheme: "stripe", Secrets: []string{"whsec_stripe"}}, signature.Message{Time: time.Now(), Body: sb})
	ts, v1, _ := strings.Cut(st.Get("Stripe-Signature"), ",")
	if code, _, rb := send(t, c.Base()+"/stripe", sb, "Stripe-Signature", ts+",v1=not-hex,"+v1+",v0=6ffbb59b"); code != 200 {
		t.Fatalf("stripe with an undecodable extra v1: %d %s", code, rb)
	}

	shop := []byte(`{"id":1}`)
	sh, _ := signature.Sign(signature.Config{Scheme: "shopify", Secrets: []string{"shop"}}, signature.Message{Body: shop})
	if code, _, rb := send(t, c.Base()+"/shopify", shop, "X-Shopify-Hmac-Sha256", sh.Get("X-Shopify-Hmac-Sha256"), "X-Shopify-Webhook-Id", "w-1"); code != 200 {
		t.Fatalf("shopify preset: %d %s", code, rb)
	}
	slack := []byte(`{"event_id":"Ev1","type":"event_callback"}`)
	sl, _ := signature.Sign(signature.Config{Scheme: "slack", Secrets: []string{"slack"}}, signature.Message{Time: time.Now(), Body: slack})
	if code, _, rb := send(t, c.Base()+"/slack", slack, "X-Slack-Signature", sl.Get("X-Slack-Signature"),
		"X-Slack-Request-Timestamp", sl.Get("X-Slack-Request-Timestamp")); code != 200 {
		t.Fatalf("slack preset: %d %s", code, rb)
	}
	var inbound []struct {
		Route  string `json:"route"`
		Source string `json:"source"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound", &inbound)
	names := map[string]string{}
	for _, r := range inbound {
		names[r.Route] = r.Source
	}
	if names["shopify"] != "shopify" || names["slack"] != "slack" {
		t.Fatalf("routes with the shopify and slack presets are not named for them: %v", inbound)
	}
}

const caseDupCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /schema {
		webhook_receive totvs_crm {
			auth none
			dedupe off
		}
		respond 200
	}
	handle /schema-off {
		webhook_receive totvs_crm {
			name totvs-lenient
			auth none
			dedupe off
			reject_case_duplicates off
		}
		respond 200
	}
	handle /plain {
		webhook_receive {
			auth none
		}
		respond 200
	}
	handle /plain-on {
		webhook_receive {
			name plain-strict
			auth none
			reject_case_duplicates
		}
		respond 200
	}
}
`

// Keys that differ only in case: a Go backend (encoding/json matches struct tags
// case-insensitively) could read the one the gateway did not validate. Refused by default
// where a schema validates the body.
func TestKeysDifferingOnlyInCase(t *testing.T) {
	c := startCaddy(t, caseDupCaddyfile)
	totvs := string(sample(t, "totvs_crm/opportunity-won.json"))
	i := strings.Index(totvs, `"eventId"`)
	twin := []byte(totvs[:i] + `"EVENTID": "other", ` + totvs[i:])
	for path, want := range map[string]int{"/schema": 400, "/schema-off": 200, "/plain": 200, "/plain-on": 400} {
		code, _, rb := send(t, c.Base()+path, twin)
		if code != want {
			t.Errorf("%s: %d %s, want %d", path, code, rb, want)
		}
		if want == 400 && !strings.Contains(string(rb), "differs from an earlier key of the object only in case") {
			t.Errorf("%s: the problem does not say why: %s", path, rb)
		}
	}
	if code, _, rb := send(t, c.Base()+"/schema", []byte(totvs)); code != 200 {
		t.Fatalf("the sample itself: %d %s", code, rb)
	}
}

// The 422 of a value that matches none of its alternatives, as the gateway and the CLI
// answer it: one violation per alternative group, the closest branch's failures under it.
func TestSchemaAlternativesAnswer(t *testing.T) {
	bad := writeTemp(t, `[{"id":"1","tipo":{"id":1},"emails":[{"email":5}]}]`)
	out, _, code := cli(t, "validate", "--schema", "rubeus", bad)
	var p struct {
		Errors []struct {
			Pointer, Message string
			Errors           []struct {
				Pointer, Message string
				Errors           []struct{ Pointer, Message string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 1 {
		t.Fatalf("validate: exit %d %v\n%s", code, err, out)
	}
	if len(p.Errors) != 1 || len(p.Errors[0].Errors) != 1 || len(p.Errors[0].Errors[0].Errors) != 1 ||
		!strings.Contains(p.Errors[0].Errors[0].Message, "none of the 4 alternatives") ||
		!strings.Contains(p.Errors[0].Errors[0].Message, "/$defs/contato") ||
		p.Errors[0].Errors[0].Errors[0].Pointer != "/0/emails" {
		t.Fatalf("want the Contato branch's one failure under the record's group:\n%s", out)
	}
}
