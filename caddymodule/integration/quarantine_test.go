package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hookgate/hookgate/internal/testwait"
)

const quarantineCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
	}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key pl-123
			schema {SCHEMA}
			on_invalid quarantine {
				retention 24h
			}
		}
		reverse_proxy {SINKADDR}
	}
	handle /ploomes-async {
		webhook_receive ploomes {
			name ploomes-async
			validation_key pl-123
			schema {SCHEMA}
			mode async
			deliver_to {SINK}/async
			on_invalid quarantine
		}
	}
	handle /strict {
		webhook_receive ploomes {
			name strict
			validation_key pl-123
			schema {SCHEMA}
		}
		reverse_proxy {SINKADDR}
	}
}
`

// quarantineSchema is Ploomes' schema with the contact record closed: version 1 refuses a
// field it does not list (CPF), version 2 lists it.
func quarantineSchema(t *testing.T, dir string, version int) string {
	t.Helper()
	extra := ""
	if version == 2 {
		extra = `, "CPF": {"type": "string"}`
	}
	s := `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["Action", "Entity"],
  "properties": {
    "Action": {"type": "string"}, "Entity": {"type": "string"}, "AccountId": {"type": "integer"},
    "ActionUserId": {"type": ["integer", "null"]}, "WebhookId": {"type": "integer"}, "WebhookCreatorId": {"type": ["integer", "null"]},
    "Old": {"$ref": "#/$defs/record"}, "New": {"$ref": "#/$defs/record"}
  },
  "$defs": {"record": {"type": "object", "additionalProperties": false, "properties": {
    "Id": {"type": "integer"}, "LegalName": {"type": "string"}, "OtherProperties": {"type": "object"},
    "Phones": {"type": "array"}, "Tags": {"type": "array"}` + extra + `}}}
}`
	p := filepath.Join(dir, fmt.Sprintf("ploomes-v%d.json", version))
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ploomesContact is a Ploomes contact update; cpf adds the field version 1 refuses, extra
// one at the top (which the schema allows).
func ploomesContact(id int, cpf, extra bool) []byte {
	b := fmt.Sprintf(`{"Action":"Update","Entity":"Contacts","AccountId":57,"WebhookId":50001901,"Old":{"Id":%d,"LegalName":"Before"},"New":{"Id":%d,"LegalName":"After %d"`, id, id, id)
	if cpf {
		b += `,"CPF":"123.456.789-09"`
	}
	b += `}`
	if extra {
		b += `,"Region":"SP"`
	}
	return []byte(b + `}`)
}

func adminRaw(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type quarantineList struct {
	Held      int    `json:"held"`
	History   int    `json:"history"`
	OnInvalid string `json:"on_invalid"`
	Items     []struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		EventID    string `json:"event_id"`
		Body       string `json:"body"`
		Forced     bool   `json:"forced"`
		Outcome    string `json:"last_outcome"`
		Headers    http.Header
		Violations []struct{ Pointer, Message string } `json:"violations"`
	} `json:"items"`
}

type releaseAnswer struct {
	Released, StillInvalid, Failed, Busy int
	Items                                []struct{ ID, State, Outcome, Detail string }
}

func (r *releaseAnswer) UnmarshalJSON(b []byte) error {
	var raw struct {
		Released     int `json:"released"`
		StillInvalid int `json:"still_invalid"`
		Failed       int `json:"failed"`
		Busy         int `json:"busy"`
		Items        []struct{ ID, State, Outcome, Detail string }
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = releaseAnswer{raw.Released, raw.StillInvalid, raw.Failed, raw.Busy, raw.Items}
	return nil
}

// Through the built Caddy, on both stores: a Ploomes route in quarantine mode answers a body
// its schema refuses 202 with Webhook-Quarantined and hands nothing on; the drift report
// names the pointer (and a field the schema does not name, from an accepted request); a
// release under the old schema leaves them held with their violations; kill -9 loses
// nothing; after a reload with a schema file that accepts the field, a release hands each
// on exactly once (a copy of one is a duplicate), and a second release hands on nothing.
// The async route releases into its queue; "release anyway" skips the schema; drop is
// explicit; a request that is not JSON, or not authenticated, is refused as before.
func TestQuarantineThroughCaddy(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			be := startBackend(t)
			dir := t.TempDir()
			v1, v2 := quarantineSchema(t, dir, 1), quarantineSchema(t, dir, 2)
			storeCfg := kill9Store(t, store)
			cfg := func(schema string) string {
				return strings.NewReplacer("{STORE}", storeCfg, "{SINK}", be.URL, "{SINKADDR}", be.Addr, "{SCHEMA}", schema).Replace(quarantineCaddyfile)
			}
			c := startCaddy(t, cfg(v1))
			key := []string{"X-Ploomes-Validation-Key", "pl-123"}
			api := c.AdminURL() + "/webhooks/inbound/"

			// Accepted, with a field at the top the schema does not name: handed on, and in the drift report.
			if code, _, b := send(t, c.Base()+"/ploomes", ploomesContact(1, false, true), key...); code != 200 {
				t.Fatalf("valid body: %d %s", code, b)
			}
			// Refused by the schema: held.
			var ids []string
			for _, id := range []int{2, 3, 4, 4} { // 4 twice: the sender sent it twice
				code, h, b := send(t, c.Base()+"/ploomes", ploomesContact(id, true, false), key...)
				if code != 202 || h.Get("Webhook-Quarantined") != "true" {
					t.Fatalf("invalid body: %d %v %s; want 202 with Webhook-Quarantined", code, h, b)
				}
				var p struct {
					Type     string `json:"type"`
					Instance string `json:"instance"`
					Errors   []struct{ Pointer, Message string }
				}
				if err := json.Unmarshal(b, &p); err != nil || !strings.HasPrefix(p.Instance, "q_") || len(p.Errors) == 0 ||
					p.Errors[0].Pointer != "/New" || !strings.Contains(p.Errors[0].Message, "CPF") || !strings.HasSuffix(p.Type, "/quarantined") {
					t.Fatalf("202 body = %s", b)
				}
				ids = append(ids, p.Instance)
			}
			// Not authenticated, not JSON, reject mode: refused as before, nothing held.
			if code, _, _ := send(t, c.Base()+"/ploomes", ploomesContact(9, true, false), "X-Ploomes-Validation-Key", "wrong"); code != 401 {
				t.Fatalf("bad key: %d; want 401", code)
			}
			if code, _, _ := send(t, c.Base()+"/ploomes", []byte(`{"New":`), key...); code != 400 {
				t.Fatalf("broken JSON: %d; want 400", code)
			}
			if code, _, _ := send(t, c.Base()+"/strict", ploomesContact(10, true, false), key...); code != 422 {
				t.Fatalf("reject mode: %d; want 422", code)
			}
			if n := be.Count(); n != 1 {
				t.Fatalf("backend got %d requests; want only the valid one", n)
			}

			var ql quarantineList
			getJSON(t, api+"ploomes/quarantine", &ql)
			if ql.Held != 4 || len(ql.Items) != 4 || ql.OnInvalid != "quarantine" || ql.Items[0].ID != ids[0] ||
				ql.Items[0].Headers.Get("X-Ploomes-Validation-Key") != "REDACTED" || !strings.Contains(ql.Items[0].Body, `"CPF"`) {
				t.Fatalf("quarantine = %+v", ql)
			}
			var drift struct {
				Groups []struct {
					Kind, Pointer, Message, Example string
					Count                           int
				}
			}
			getJSON(t, api+"ploomes/drift", &drift)
			found := map[string]int{}
			for _, g := range drift.Groups {
				found[g.Kind+" "+g.Pointer] += g.Count
				if g.Pointer == "/New" && !strings.Contains(g.Example, "CPF") {
					t.Errorf("drift example = %q", g.Example)
				}
			}
			if found["violation /New"] != 4 || found["unnamed_field /New/CPF"] != 4 || found["unnamed_field /Region"] != 1 {
				t.Fatalf("drift = %+v; want 4 violations at /New naming the unnamed /New/CPF, and the unnamed /Region", drift.Groups)
			}
			getJSON(t, api+"strict/drift", &drift)
			if len(drift.Groups) != 2 || drift.Groups[0].Pointer != "/New" {
				t.Fatalf("reject-mode drift = %+v; the report covers refused requests too", drift.Groups)
			}

			// Bad parameters: a precise 400, nothing released (an empty id is not "every request").
			for _, bad := range []struct{ method, path string }{{"POST", "ploomes/quarantine/release?id="}, {"POST", "ploomes/quarantine/release?pointer="},
				{"POST", "ploomes/quarantine/drop?id=" + ids[0] + "&all=true"}, {"GET", "ploomes/quarantine?bogus=1"},
				{"GET", "ploomes/quarantine?after=zzz"}, {"GET", "ploomes/drift?x=1"}} {
				if code, b := adminRaw(t, bad.method, api+bad.path); code != 400 || !strings.Contains(string(b), "invalid_query") {
					t.Fatalf("%s %s: %d %s; want 400 invalid_query", bad.method, bad.path, code, b)
				}
			}
			// A release under the same schema: still invalid, still held, nothing handed on.
			var ra releaseAnswer
			code, b := adminRaw(t, "POST", api+"ploomes/quarantine/release")
			if code != 200 || json.Unmarshal(b, &ra) != nil || ra.StillInvalid != 4 || ra.Released != 0 {
				t.Fatalf("release under v1: %d %s", code, b)
			}
			if be.Count() != 1 {
				t.Fatal("a still-invalid request was handed on")
			}

			// kill -9 between quarantine and release loses nothing.
			c.Kill()
			c.start()
			getJSON(t, api+"ploomes/quarantine", &ql)
			if ql.Held != 4 {
				t.Fatalf("after kill -9: %d held; want 4", ql.Held)
			}

			// The schema learns CPF; release through the CLI: each handed on once.
			reload(t, c, cfg(v2))
			out, err := runCmd(caddyBin, "webhook", "quarantine", "release", "--route", "ploomes", "--address", c.AdminURL())
			if err != nil || json.Unmarshal(jsonOnly(out), &ra) != nil || ra.Released != 4 || ra.StillInvalid != 0 || ra.Failed != 0 {
				t.Fatalf("release under v2: %v %s", err, out)
			}
			got := be.Got()
			if len(got) != 4 { // the valid one, then 2, 3 and 4 once (the copy of 4 is a duplicate)
				t.Fatalf("backend got %d requests; want 4", len(got))
			}
			for i, want := range []int{2, 3, 4} {
				if !bytes.Equal(got[i+1].Body, ploomesContact(want, true, false)) {
					t.Fatalf("request %d = %s", i+1, got[i+1].Body)
				}
			}
			outcomes := map[string]int{}
			for _, it := range ra.Items {
				outcomes[it.Outcome]++
			}
			if outcomes["accepted"] != 3 || outcomes["duplicate"] != 1 {
				t.Fatalf("release outcomes = %v; want 3 accepted and 1 duplicate", outcomes)
			}
			code, b = adminRaw(t, "POST", api+"ploomes/quarantine/release")
			if code != 200 || json.Unmarshal(b, &ra) != nil || ra.Released != 0 || be.Count() != 4 {
				t.Fatalf("second release: %d %s, backend %d", code, b, be.Count())
			}
			getJSON(t, api+"ploomes/quarantine?state=released", &ql)
			if ql.Held != 0 || ql.History != 4 || len(ql.Items) != 4 || ql.Items[0].State != "released" {
				t.Fatalf("history = %+v", ql)
			}

			// Async: released into the queue, delivered once each.
			reload(t, c, cfg(v1))
			for _, id := range []int{20, 21} {
				if code, _, b := send(t, c.Base()+"/ploomes-async", ploomesContact(id, true, false), key...); code != 202 {
					t.Fatalf("async invalid: %d %s", code, b)
				}
			}
			reload(t, c, cfg(v2))
			code, b = adminRaw(t, "POST", api+"ploomes-async/quarantine/release")
			if code != 200 || json.Unmarshal(b, &ra) != nil || ra.Released != 2 || ra.Items[0].Outcome != "queued" {
				t.Fatalf("async release: %d %s", code, b)
			}
			testwait.Until(t, 20*time.Second, func() bool { return be.Count() == 6 }, "the async route did not deliver the 2 released requests")

			// Release anyway, and drop: explicit, kept as history.
			reload(t, c, cfg(v1))
			_, _, b = send(t, c.Base()+"/ploomes", ploomesContact(30, true, false), key...)
			var forced struct{ Instance string }
			json.Unmarshal(b, &forced)
			code, b = adminRaw(t, "POST", api+"ploomes/quarantine/release?id="+forced.Instance+"&force=true")
			if code != 200 || json.Unmarshal(b, &ra) != nil || ra.Released != 1 || be.Count() != 7 {
				t.Fatalf("release anyway: %d %s", code, b)
			}
			var one struct {
				State  string `json:"state"`
				Forced bool   `json:"forced"`
			}
			getJSON(t, api+"ploomes/quarantine/"+forced.Instance, &one)
			if one.State != "released" || !one.Forced {
				t.Fatalf("released anyway = %+v; want released and forced", one)
			}
			send(t, c.Base()+"/ploomes", ploomesContact(31, true, false), key...)
			if code, _ := adminRaw(t, "POST", api+"ploomes/quarantine/drop"); code != 400 {
				t.Fatalf("drop without a selection: %d; want 400", code)
			}
			code, b = adminRaw(t, "POST", api+"ploomes/quarantine/drop?pointer=/New")
			if code != 200 || !strings.Contains(string(b), `"dropped":1`) {
				t.Fatalf("drop: %d %s", code, b)
			}
			code, b = adminRaw(t, "POST", api+"ploomes/quarantine/release")
			if json.Unmarshal(b, &ra) != nil || ra.Released != 0 || be.Count() != 7 {
				t.Fatalf("release after drop: %d %s", code, b)
			}
			getJSON(t, api+"ploomes/quarantine?state=dropped", &ql)
			if len(ql.Items) != 1 || ql.Items[0].State != "dropped" {
				t.Fatalf("dropped history = %+v", ql.Items)
			}

			// Visible: metrics.
			resp, err := http.Get(c.AdminURL() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{`caddy_webhook_quarantine_requests{route="ploomes"} 0`, `caddy_webhook_quarantine_oldest_age_seconds{route="ploomes"} 0`,
				`caddy_webhook_schema_drift_total{kind="violation",pointer="/New",route="ploomes"}`,
				`caddy_webhook_inbound_requests_total{outcome="quarantined",route="ploomes",source="ploomes"}`} {
				if !strings.Contains(string(mb), want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if !strings.Contains(c.Log(), `"webhook quarantined"`) {
				t.Error("no log line for a quarantined request")
			}
		})
	}
}

// The dashboard in Chromium: a route holding requests is announced above everything else,
// its drift report names the pointer, "Release all" (after a reload that accepts the field)
// hands them on and the alert says so; "Drop all" asks first; a phone width overflows nothing.
func TestDashboardQuarantine(t *testing.T) {
	browser := chromiumPath(t)
	be := startBackend(t)
	dir := t.TempDir()
	v1, v2 := quarantineSchema(t, dir, 1), quarantineSchema(t, dir, 2)
	cfg := func(schema string) string {
		return strings.NewReplacer("{STORE}", "store embedded", "{SINK}", be.URL, "{SINKADDR}", be.Addr, "{SCHEMA}", schema,
			"\thandle /strict {", "\thandle /ops/* {\n\t\twebhook_dashboard\n\t}\n\thandle /strict {").Replace(quarantineCaddyfile)
	}
	c := startCaddy(t, cfg(v1))
	for _, id := range []int{1, 2} {
		if code, _, b := send(t, c.Base()+"/ploomes", ploomesContact(id, true, false), "X-Ploomes-Validation-Key", "pl-123"); code != 202 {
			t.Fatalf("invalid body: %d %s", code, b)
		}
	}
	ctx := browserContext(t, browser)
	text := browserText(t, ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.Poll[chromedp.Void](`!document.getElementById("quarantine-alert").hidden && !!document.querySelector("#quarantine tr[data-route=ploomes] ol.drift")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
		t.Fatalf("browser: %v\n%s", err, page)
	}
	if a := text(`#quarantine-alert`); !strings.Contains(a, "2 requests held in the quarantine of ploomes") {
		t.Fatalf("alert = %q", a)
	}
	// Above everything: the alert comes before the endpoints' section.
	if above, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("quarantine-alert").getBoundingClientRect().top < document.getElementById("endpoints").getBoundingClientRect().top`)); !above {
		t.Error("the quarantine alert is not above the endpoints")
	}
	row := text(`#quarantine tr[data-route=ploomes]`)
	for _, want := range []string{"2", "/New", "additionalProperties 'CPF' not allowed", "/New/CPF", "Release all", "Drop all"} {
		if !strings.Contains(row, want) {
			t.Errorf("quarantine row lacks %q: %q", want, row)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err == nil {
		saveShot(t, "dashboard-quarantine.png", png)
	}
	reload(t, c, cfg(v2))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#quarantine tr[data-route=ploomes] button.q-release`)),
		chromedp.Poll[chromedp.Void](`(document.getElementById("quarantine-alert").textContent || "").includes("Released 2")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("release from the dashboard: %v; alert %q", err, text(`#quarantine-alert`))
	}
	if be.Count() != 2 {
		t.Fatalf("backend got %d; want the 2 released", be.Count())
	}
	// Drop asks first; cancelled, nothing is dropped.
	reload(t, c, cfg(v1))
	send(t, c.Base()+"/ploomes", ploomesContact(3, true, false), "X-Ploomes-Validation-Key", "pl-123")
	if err := chromedp.Do(ctx, chromedp.Navigate(c.Base()+"/ops/?view=all"),
		chromedp.WaitVisible(chromedp.CSS(`#quarantine tr[data-route=ploomes] button.q-drop`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => false, true)`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#quarantine tr[data-route=ploomes] button.q-drop`))); err != nil {
		t.Fatal(err)
	}
	var ql quarantineList
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/quarantine", &ql)
	if ql.Held != 1 {
		t.Fatalf("a cancelled drop dropped: %d held", ql.Held)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#quarantine tr[data-route=ploomes] button.q-drop`)),
		chromedp.Poll[chromedp.Void](`!document.querySelector("#quarantine tr[data-route=ploomes] button.q-drop")`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("drop: %v", err)
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/quarantine", &ql)
	if ql.Held != 0 || ql.History != 3 {
		t.Fatalf("after the drop: %+v", ql)
	}
	// A phone: nothing overflows sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err != nil || wide {
		t.Fatalf("phone width overflows: %v %v", wide, err)
	}
}

// A burst of 10,000 requests the schema refuses, 16 at a time, into a quarantine bounded at
// 1 MiB: it holds what fits and answers the rest 503 quarantine_full (the sender retries),
// never more than its bound; requests it held are never evicted; accepted traffic on another
// route keeps its answers, and its latency during the burst is measured against before.
func TestQuarantineBurstStaysWithinItsBound(t *testing.T) {
	be := startBackend(t)
	schema := quarantineSchema(t, t.TempDir(), 1)
	cfg := strings.NewReplacer("{STORE}", "store embedded", "{SINK}", be.URL, "{SINKADDR}", be.Addr, "{SCHEMA}", schema,
		"retention 24h", "retention 24h\n\t\t\t\tmax_bytes 1MiB").Replace(quarantineCaddyfile)
	c := startCaddy(t, cfg)
	n := 10_000
	if raceBuilt(t) {
		n = 2_000
	}
	key := []string{"X-Ploomes-Validation-Key", "pl-123"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	post := func(path string, body []byte) (int, time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, c.Base()+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(key[0], key[1])
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(t0)
	}
	// Accepted traffic alone: the strict route (same schema, reject mode) with valid bodies.
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	measure := func(from, count int) (time.Duration, int) {
		var ds []time.Duration
		bad := 0
		for i := range count {
			code, d := post("/strict", ploomesContact(from+i, false, false))
			if code != 200 {
				bad++
			}
			ds = append(ds, d)
		}
		return median(ds), bad
	}
	alone, bad := measure(100_000, 200)
	if bad > 0 {
		t.Fatalf("%d accepted requests failed before the burst", bad)
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				code, _ := post("/ploomes", ploomesContact(i, true, false))
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	var during time.Duration
	go func() {
		defer close(done)
		during, bad = measure(200_000, 200)
	}()
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	<-done
	if bad > 0 {
		t.Fatalf("%d accepted requests on another route failed during the burst", bad)
	}
	var ql quarantineList
	var st struct {
		Held  int   `json:"held"`
		Bytes int64 `json:"bytes"`
	}
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/quarantine?limit=1", &ql)
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/quarantine?limit=1", &st)
	if codes[202]+codes[503] != n || codes[202] != st.Held || st.Bytes > 1<<20 || codes[503] == 0 {
		t.Fatalf("answers %v, held %d of %d bytes: want every request 202 (held) or 503 (full), at most 1 MiB held", codes, st.Held, st.Bytes)
	}
	if be.Count() != 400 {
		t.Fatalf("backend got %d; want the 400 accepted requests only", be.Count())
	}
	t.Logf("burst of %d refused requests: %d held (%d bytes of 1 MiB), %d answered 503 quarantine_full; accepted traffic on another route: median %v alone, %v during the burst",
		n, codes[202], st.Bytes, codes[503], alone, during)
	record(t, fmt.Sprintf("burst of %d schema-refused requests into a 1 MiB quarantine (embedded)", n),
		fmt.Sprintf("%d held (202), %d 503 quarantine_full; accepted route median %v alone, %v during", codes[202], codes[503], alone.Round(10*time.Microsecond), during.Round(10*time.Microsecond)),
		"0 (nothing held was evicted; the 503s are retried by the sender)")
}
