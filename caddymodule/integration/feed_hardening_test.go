package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// contatoVersion is one version of Serviços contact 77: its nome says which.
func contatoVersion(v int) string {
	return fmt.Sprintf(`{"codigo":"77","nome":"Versão %d","emailPrincipal":"contato77@example.com.br","telefonePrincipal":"55(31)26582323","cep":"33840-610","numero":"7","cidade":"Ribeirão das Neves","uf":"MG","aluno":"1"}`, v)
}

type pulled struct {
	Codigo string `json:"codigo"`
	Nome   string `json:"nome"`
}

// pullPage pulls one page as Rubeus does.
func pullPage(t *testing.T, c *Caddy) []pulled {
	t.Helper()
	var recs []pulled
	code, _, rb := send(t, c.Base()+"/rubeus/contatos", nil, "Authorization", "Basic "+basicToken("rubeus", "rb-pass"))
	if code != 200 || json.Unmarshal(rb, &recs) != nil {
		t.Fatalf("pull: %d %.200s", code, rb)
	}
	return recs
}

// pullNames pulls one page and returns the records' nome fields.
func pullNames(t *testing.T, c *Caddy) []string {
	t.Helper()
	var names []string
	for _, r := range pullPage(t, c) {
		names = append(names, r.Nome)
	}
	return names
}

// Issue 20, items 4, 12, 13 and 18, on both stores: a requeue serves records again in
// their publish order (three versions of one contact; 2,500 records); a feed. type that
// names no feed is refused; every bad record of a batch is named; a 1,000-record publish
// is one store write.
func TestRubeusFeedOrderAndRefusals(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			c := startCaddy(t, strings.Replace(feedCaddyfile, "{STORE}", storeLine(t, store), 1), "RUBEUS_PASS=rb-pass")

			// 12: no such feed.
			for _, typ := range []string{"feed.nope", "FEED.rubeus-contatos", "Feed.nope"} {
				code, _, rb := send(t, c.Base()+"/publish", []byte("["+contato(1)+"]"), "Webhook-Event-Type", typ)
				if code != 422 || !strings.Contains(string(rb), typ) {
					t.Fatalf("publishing to %s: %d %s", typ, code, rb)
				}
			}
			var code int
			var rb []byte
			// 13: every bad record is named.
			bad := "[" + contato(1) + `,{"codigo":"2","nome":"X","emailPrincipal":"x@y.br","cep":"1"},{"codigo":"3","nome":"Y","emailPrincipal":"y@y.br","cep":"2"}]`
			code, _, rb = send(t, c.Base()+"/publish", []byte(bad), "Webhook-Event-Type", "feed.rubeus-contatos")
			if code != 422 || !strings.Contains(string(rb), `"/1/cep"`) || !strings.Contains(string(rb), `"/2/cep"`) {
				t.Fatalf("a batch with bad records 1 and 2: %d %s", code, rb)
			}

			// A browser on another site (an <img>, a no-cors fetch) through an IP
			// allow-list, with cached Basic credentials: served records would be lost
			// to Rubeus. Refused; nothing is served.
			publishRecords(t, c, 9000, 9001, "xsite")
			for _, h := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://attacker.example"}, {"Sec-Fetch-Site", "same-site"}} {
				code, _, rb := send(t, c.Base()+"/rubeus/contatos", nil, "Authorization", "Basic "+basicToken("rubeus", "rb-pass"), h[0], h[1])
				if code != 403 || !strings.Contains(string(rb), "cross_site") {
					t.Fatalf("a feed call with %s: %s: %d %.200s", h[0], h[1], code, rb)
				}
			}
			if got := pullPage(t, c); len(got) != 1 || got[0].Codigo != "9000" {
				t.Fatalf("after the cross-site calls, a pull got %+v", got)
			}
			waitServed(t, c, 1)
			if code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?since=1m"); code != 200 || body["requeued"] != float64(1) {
				t.Fatalf("requeue: %d %v", code, body)
			}
			if got := pullPage(t, c); len(got) != 1 {
				t.Fatalf("after the requeue: %+v", got)
			}

			// 4: three versions of one contact, published one after another.
			for v := 1; v <= 3; v++ {
				if code, _, rb := send(t, c.Base()+"/publish", []byte("["+contatoVersion(v)+"]"), "Webhook-Event-Type", "feed.rubeus-contatos"); code != 202 {
					t.Fatalf("version %d: %d %s", v, code, rb)
				}
			}
			want := "[Versão 1 Versão 2 Versão 3]"
			if got := fmt.Sprint(pullNames(t, c)); got != want {
				t.Fatalf("first pull: %s, want %s", got, want)
			}
			waitServed(t, c, 4)
			if code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?since=1m"); code != 200 || body["requeued"] != float64(4) {
				t.Fatalf("requeue: %d %v", code, body)
			}
			if got := fmt.Sprint(pullNames(t, c)[1:]); got != want { // after record 9000
				t.Fatalf("after the requeue: %s, want %s", got, want)
			}
			waitServed(t, c, 4)

			// 4 and 18: 2,500 records in 3 batches (1,000 each at most), served and
			// requeued in publish order.
			t0 := time.Now()
			publishRecords(t, c, 0, 1000, "o1")
			took := time.Since(t0)
			publishRecords(t, c, 1000, 2000, "o2")
			publishRecords(t, c, 2000, 2500, "o3")
			// pullAll pulls until n records came and returns them in the order served.
			pullAll := func(what string, n int) []pulled {
				t.Helper()
				var got []pulled
				for len(got) < n {
					page := pullPage(t, c)
					if len(page) == 0 {
						t.Fatalf("%s: the feed ran dry after %d of %d records", what, len(got), n)
					}
					got = append(got, page...)
				}
				return got
			}
			inPublishOrder := func(what string, got []pulled) {
				t.Helper()
				for i, r := range got {
					if r.Codigo != fmt.Sprint(i) {
						t.Fatalf("%s: record %d is contato %s (the first out of order)", what, i, r.Codigo)
					}
				}
			}
			inPublishOrder("first pulls", pullAll("first pulls", 2500))
			waitServed(t, c, 2504)
			if code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?since=1m"); code != 200 || body["requeued"] != float64(2504) {
				t.Fatalf("requeue of 2,503: %d %v", code, body)
			}
			again := pullAll("after the requeue", 2504)
			if got := fmt.Sprint(pullNamesOf(again[1:4])); got != want {
				t.Fatalf("after the second requeue, the contact's versions: %s", got)
			}
			inPublishOrder("after the requeue", again[4:])
			// A key reused with other records: refused, nothing stored.
			publishRecords(t, c, 5000, 5002, "reused")
			code, _, rb = send(t, c.Base()+"/publish", []byte("["+contato(5000)+","+contato(5009)+"]"), "Webhook-Event-Type", "feed.rubeus-contatos", "Idempotency-Key", "reused")
			if code != 422 || !strings.Contains(string(rb), "Idempotency-Key") {
				t.Fatalf("a reused Idempotency-Key with other records: %d %s", code, rb)
			}
			if got := pullPage(t, c); len(got) != 2 || got[0].Codigo != "5000" || got[1].Codigo != "5001" {
				t.Fatalf("after the refused reuse, the feed holds %+v", got)
			}
			waitServed(t, c, 2506)

			// A newer version pending while older ones are requeued (an outside review
			// found the requeued old version served after the newer one).
			if code, _, rb := send(t, c.Base()+"/publish", []byte("["+contatoVersion(5)+"]"), "Webhook-Event-Type", "feed.rubeus-contatos"); code != 202 {
				t.Fatalf("version 5: %d %s", code, rb)
			}
			if code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?since=1m"); code != 200 || body["requeued"] != float64(2506) {
				t.Fatalf("the last requeue: %d %v", code, body)
			}
			last := pullNamesOf(pullAll("with version 5 pending", 2507))
			if last[len(last)-1] != "Versão 5" || last[1] != "Versão 1" || last[3] != "Versão 3" {
				t.Fatalf("requeued versions 1-3 with version 5 pending: served %v … %v", last[:4], last[len(last)-1])
			}
			record(t, "Rubeus feed, "+store+" store: 1,000 Contato records (3 KB each) in one publish through Caddy",
				fmt.Sprintf("%d ms; 2,500 records and their requeue served in publish order", took.Milliseconds()), "0 records; none out of order")
		})
	}
}

func pullNamesOf(rs []pulled) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Nome)
	}
	return names
}

// waitServed waits until the feed counts n served records.
func waitServed(t *testing.T, c *Caddy, n int) {
	t.Helper()
	testwait.Until(t, 10*time.Second, func() bool {
		var fs []struct {
			Served int `json:"served"`
		}
		getJSON(t, c.AdminURL()+"/webhooks/feeds", &fs)
		return len(fs) == 1 && fs[0].Served == n
	}, fmt.Sprintf("%d served records recorded", n))

}
