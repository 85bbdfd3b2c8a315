package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hookgate/hookgate/internal/testwait"
)

// layoutRoutes are route names as operators write them: long, one per tenant and sender.
var layoutRoutes = []string{
	"totvs_crm_filial_sao_paulo_norte", "totvs_crm_filial_rio_de_janeiro_sul", "totvs_crm_filial_belo_horizonte",
	"ploomes_comercial_vendas_diretas", "ploomes_pos_venda_e_suporte", "sintegre_ipdo_diario_e_semanal",
	"rubeus_captacao_graduacao_ead", "rubeus_captacao_pos_graduacao", "totvs_crm_filial_porto_alegre",
	"totvs_crm_filial_curitiba_centro", "totvs_crm_filial_recife_e_olinda", "totvs_crm_filial_manaus_zona_franca",
}

// The dashboard uses the full width of a desktop screen, and at 1280 and 1600 px no table
// overflows its card, with realistic data: a dozen routes with long names and several
// refusal reasons each, subscriptions (long ids) with dead letters, and attempts whose
// "HTTP 503 · 4.2 ms" pill stays on one line; ids do not break mid-token. The request
// log's outcome filter offers every outcome of the core, and the forced replay says that
// it skips the stale-event guard too. Screenshots go to DASHBOARD_LAYOUT_DIR when set.
func TestDashboardLayoutAtDesktopWidths(t *testing.T) {
	browser := chromiumPath(t)
	sink := startPathSink(t)
	var routes strings.Builder
	for _, r := range layoutRoutes {
		fmt.Fprintf(&routes, "\thandle /%s {\n\t\twebhook_receive totvs_crm {\n\t\t\tname %s\n\t\t\tauth header X-Api-Key {env.TOTVS_KEY}\n\t\t}\n\t\trespond 200\n\t}\n", r, r)
	}
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint partner-erp-integracao-financeira {
			url `+sink.URL+`/erp/webhooks/receive/partner-erp-integration/v2?tenant=acme-industria-e-comercio
			events contact.* deal.*
			retry off
			allow_private
		}
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
`+routes.String()+`}
`, totvsKey)
	sink.set("/erp/webhooks/receive/partner-erp-integration/v2", 503)
	sink.set("/partner", 503)
	for i := range 4 {
		code, s := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions",
			fmt.Sprintf(`{"url":"%s/partner","events":["deal.*"],"description":"Parceiro CRM número %d, filial com nome comprido","retry":["1s"],"breaker":{"off":true}}`, sink.URL, i))
		if code != 201 {
			t.Fatalf("create a subscription: %d %v", code, s)
		}
	}
	for i := range 3 {
		if code, _, rb := send(t, c.Base()+"/publish", []byte(`{"id":7}`), "Webhook-Event-Type", fmt.Sprintf("deal.won.%d", i)); code != 202 {
			t.Fatalf("publish: %d %s", code, rb)
		}
	}
	for i, r := range layoutRoutes {
		u := c.Base() + "/" + r
		send(t, u, totvsEvent(t, fmt.Sprintf("%08d-1414-4414-8414-141414141414", i)), "X-Api-Key", "tk-456")
		send(t, u, totvsEvent(t, fmt.Sprintf("%08d-1414-4414-8414-141414141414", i)), "X-Api-Key", "tk-456")
		send(t, u, []byte(`{}`), "X-Api-Key", "nope")
		send(t, u, []byte(`{"bad":`), "X-Api-Key", "tk-456")
		send(t, u, []byte(`{"eventId":"x"}`), "X-Api-Key", "tk-456")
		send(t, u, []byte(`{}`), "X-Api-Key", "tk-456", "Content-Type", "text/plain")
		send(t, u, totvsAt(t, uuid(100+i), "row", "yesterday"), "X-Api-Key", "tk-456")
	}
	testwait.Until(t, 20*time.Second, func() bool {
		var dead []map[string]any
		getJSON(t, c.AdminURL()+"/webhooks/deliveries?state=dead&limit=100", &dead)
		return len(dead) >= 3+4*3
	}, "the dead letters")

	ctx := browserContext(t, browser)
	// Where a table is wider than its card (its scroll box), or a cell breaks what must
	// stay whole.
	const overflows = `(() => {
		const out = [];
		for (const sec of document.querySelectorAll("section")) {
			const box = sec.querySelector(".scroll"), table = sec.querySelector("table");
			if (!box || table.hidden) continue;
			if (table.scrollWidth > box.clientWidth + 1 || table.getBoundingClientRect().right > sec.getBoundingClientRect().right + 1)
				out.push(sec.id + ": table " + table.scrollWidth + " px in a card of " + box.clientWidth);
		}
		for (const p of document.querySelectorAll(".pill")) if (p.getClientRects().length > 1 || p.getBoundingClientRect().height > 30) out.push("a pill wraps: " + p.textContent);
		// Where a line starts inside el's text, other than after "~" (between an endpoint's
		// name and the rest of a delivery id).
		const breaks = el => {
			const text = [], walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
			for (let n; (n = walker.nextNode());) for (let i = 0; i < n.length; i++) text.push([n, i]);
			const bad = [];
			let top = null;
			text.forEach(([n, i], k) => {
				const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
				const rect = r.getBoundingClientRect();
				if (rect.width === 0) return;
				if (top !== null && rect.top > top + 2 && text[k - 1][0].data[text[k - 1][1]] !== "~") bad.push(k);
				top = rect.top;
			});
			return bad;
		};
		for (const s of document.querySelectorAll("#endpoints td[data-label=Endpoint] strong, td[data-label=Delivery] code, #dead td[data-label=Endpoint], #recent td[data-label=Endpoint], td[data-label=Event] code"))
			if (breaks(s).length) out.push("an id breaks mid-token: " + s.textContent + " at " + breaks(s));
		return JSON.stringify(out);
	})()`
	for _, width := range []int64{1280, 1600} {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(width, 1000),
			chromedp.Navigate(c.Base()+"/ops/?view=all"),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll("#inbound tbody tr").length === %d && document.querySelectorAll("#dead tbody tr").length >= 15`, len(layoutRoutes)),
				chromedp.WithPollingTimeout(10*time.Second)),
		)
		if err != nil {
			t.Fatalf("%d px: %v\n%s", width, err, c.Log())
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](overflows))
		if err != nil {
			t.Fatal(err)
		}
		if got != "[]" {
			t.Errorf("at %d px: %s", width, got)
		}
		mainWidth, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("main").getBoundingClientRect().width`))
		if mainWidth < 0.95*float64(width)-40 {
			t.Errorf("at %d px the page uses %.0f px: not the full width", width, mainWidth)
		}
		if dir := os.Getenv("DASHBOARD_LAYOUT_DIR"); dir != "" {
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("dashboard-%d.png", width)), shot, 0o644)
		}
	}
	// The outcome filter: every outcome the core knows, from the core's one list.
	options, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#req-outcome option")].map(o => o.value).join(" ")`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accepted", "queued", "duplicate", "stale", "refused", "unauthorized", "invalid_json", "schema_violation",
		"invalid_order_value", "unsupported_media_type", "body_too_large", "order_in_flight"} {
		if !strings.Contains(" "+options+" ", " "+want+" ") {
			t.Errorf("the outcome filter lacks %s: %s", want, options)
		}
	}
	// The forced replay says what it skips.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#requests tbody tr:last-child`)),
		chromedp.WaitVisible(chromedp.CSS(`#req-detail button.replay-force`)))
	if err != nil {
		t.Fatalf("open an accepted request: %v", err)
	}
	label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#req-detail button.replay-force`)))
	// The request log with a request's detail open, for docs/operations.md.
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#requests`)))
	if err != nil {
		t.Fatalf("screenshot of the request log: %v", err)
	}
	saveShot(t, "dashboard-requests.png", shot)
	if !strings.Contains(label, "dedupe") || !strings.Contains(label, "stale") {
		t.Errorf("the forced replay's button says %q: it skips dedupe and the stale-event guard", label)
	}
}
