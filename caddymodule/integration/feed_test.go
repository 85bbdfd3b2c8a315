package integration

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

const feedCaddyfile = `{
	{GLOBAL}
	webhooks {
		{STORE}
		feed rubeus-contatos {
			schema rubeus_servicos_contato
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /publish {
		webhook_publish
	}
	handle /rubeus/contatos {
		webhook_feed rubeus-contatos {
			auth basic rubeus {env.RUBEUS_PASS}
		}
	}
}
`

// contato is a valid Serviços contact record with a given code, about 3 KB: a page of
// 1000 is larger than loopback's socket buffers, so a caller that stops reading really
// stops the answer mid-way.
func contato(i int) string {
	return fmt.Sprintf(`{"codigo":"%d","nome":"Contato %d da Silva","emailPrincipal":"contato%d@example.com.br","telefonePrincipal":"55(31)26582323","cep":"33840-610","numero":"%d","cidade":"Ribeirão das Neves","uf":"MG","aluno":"1","outrasDeficiencias":"%s","camposPersonalizados":{"campanhaOrigem":"Facebook"}}`,
		i, i, i, i%1000, strings.Repeat("x", 2800))
}

// publishRecords publishes records [from, to) as one array.
func publishRecords(t *testing.T, c *Caddy, from, to int, key string) {
	t.Helper()
	recs := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, contato(i))
	}
	code, _, rb := send(t, c.Base()+"/publish", []byte("["+strings.Join(recs, ",")+"]"), "Webhook-Event-Type", "feed.rubeus-contatos", "Idempotency-Key", key)
	if code != 202 || !strings.Contains(string(rb), `"records":`+strconv.Itoa(to-from)) {
		t.Fatalf("publish [%d,%d): %d %s", from, to, code, rb)
	}
}

// pull calls the feed as Rubeus does and returns the records' codes.
func pull(t *testing.T, c *Caddy) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.Base()+"/rubeus/contatos", nil)
	req.SetBasicAuth("rubeus", "rb-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var recs []map[string]any
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &recs) != nil {
		t.Fatalf("pull: %d %q", resp.StatusCode, b[:min(len(b), 200)])
	}
	codes := make([]string, len(recs))
	for i, r := range recs {
		codes[i] = r["codigo"].(string)
	}
	return codes
}

// hangUp calls the feed on a socket with a tiny receive window, reads nothing of the
// answer, and closes: the server cannot write the page whole.
func hangUp(t *testing.T, c *Caddy) {
	t.Helper()
	d := net.Dialer{Control: smallReceiveBuffer}
	conn, err := d.Dial("tcp", "127.0.0.1:"+itoa(c.Port))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /rubeus/contatos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n\r\n", basicToken("rubeus", "rb-pass"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, "200") {
		t.Fatalf("hang-up call: %q", line)
	}
	time.Sleep(300 * time.Millisecond) // the server is blocked writing
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	// The server has released the page once it counts the call as cut.
	testwait.Until(t, 10*time.Second, func() bool {
		return strings.Contains(string(metricsText(t, c)), `caddy_webhook_feed_calls_total{feed="rubeus-contatos",status="cut"} 1`)
	}, "the cut call handled")

}

// Publish 2,500 records; pages of 1000, 1000, 500, then []; each record exactly once; a
// caller that hangs up mid-answer gets its page again; concurrent callers get disjoint
// pages; a requeue serves again; a bad record refuses its whole batch; on both stores.
func TestRubeusFeed(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			c := startCaddy(t, strings.Replace(feedCaddyfile, "{STORE}", storeLine(t, store), 1), "RUBEUS_PASS=rb-pass")
			if got := pull(t, c); len(got) != 0 {
				t.Fatalf("an empty feed answered %d records", len(got))
			}
			// A bad record refuses its whole batch, with its index.
			bad := "[" + contato(1) + `,{"codigo":"2","nome":"X","emailPrincipal":"x@y.br","cep":"1"}]`
			code, _, rb := send(t, c.Base()+"/publish", []byte(bad), "Webhook-Event-Type", "feed.rubeus-contatos")
			if code != 422 || !strings.Contains(string(rb), `"/1/cep"`) {
				t.Fatalf("bad batch: %d %s", code, rb)
			}
			publishRecords(t, c, 0, 1000, "b1")
			publishRecords(t, c, 1000, 2000, "b2")
			publishRecords(t, c, 2000, 2500, "b3")
			publishRecords(t, c, 2000, 2500, "b3") // a retried publish stores nothing twice
			if st, _, _ := send(t, c.Base()+"/rubeus/contatos", nil, "Authorization", "Basic "+basicToken("rubeus", "wrong")); st != 401 {
				t.Fatalf("wrong credentials: %d", st)
			}
			hangUp(t, c)
			seen := map[string]int{}
			var sizes []int
			for i := 0; i < 3; i++ {
				page := pull(t, c)
				sizes = append(sizes, len(page))
				for _, code := range page {
					seen[code]++
				}
			}
			if fmt.Sprint(sizes) != "[1000 1000 500]" || len(seen) != 2500 {
				t.Fatalf("pages %v, %d distinct records", sizes, len(seen))
			}
			for code, n := range seen {
				if n != 1 {
					t.Fatalf("record %s served %d times", code, n)
				}
			}
			if got := pull(t, c); len(got) != 0 {
				t.Fatalf("a fourth call got %d records", len(got))
			}
			served := func() bool {
				var fs []struct {
					Served int `json:"served"`
				}
				getJSON(t, c.AdminURL()+"/webhooks/feeds", &fs)
				return len(fs) == 1 && fs[0].Served == 2500
			}
			testwait.Until(t, 10*time.Second, served, "the served records recorded")
			// Requeue everything served in the last minute: concurrent callers split it.
			code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?since=1m")
			if code != 200 || body["requeued"] != float64(2500) {
				t.Fatalf("requeue: %d %v", code, body)
			}
			var mu sync.Mutex
			again := map[string]int{}
			parallel(4, func(int) {
				for _, code := range pull(t, c) {
					mu.Lock()
					again[code]++
					mu.Unlock()
				}
			})
			for code, n := range again {
				if n != 1 {
					t.Fatalf("concurrent callers both got record %s", code)
				}
			}
			if len(again) != 2500 {
				t.Fatalf("four concurrent calls served %d records, want all 2500", len(again))
			}
			var feeds []struct {
				Name     string `json:"name"`
				Pending  int    `json:"pending"`
				Served   int    `json:"served"`
				LastCall *struct {
					From string `json:"from"`
				} `json:"last_call"`
			}
			// The caller has its page before the server records it served: wait for that.
			testwait.Until(t, 10*time.Second, served, "the served records recorded")
			getJSON(t, c.AdminURL()+"/webhooks/feeds", &feeds)
			if len(feeds) != 1 || feeds[0].Pending != 0 || feeds[0].Served != 2500 || feeds[0].LastCall == nil || !strings.HasPrefix(feeds[0].LastCall.From, "127.0.0.1") {
				t.Fatalf("/webhooks/feeds: %+v", feeds)
			}
			// Served records stay readable, and one can be requeued by its listed id.
			var listed []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			}
			getJSON(t, c.AdminURL()+"/webhooks/deliveries?endpoint=feed.rubeus-contatos&state=delivered&limit=5", &listed)
			if len(listed) != 5 || listed[0].State != "delivered" {
				t.Fatalf("served records listed: %+v", listed)
			}
			if code, body := adminPost(t, c.AdminURL()+"/webhooks/feeds/rubeus-contatos/requeue?id="+listed[0].ID); code != 200 || body["requeued"] != float64(1) {
				t.Fatalf("requeue by id: %d %v", code, body)
			}
			if got := pull(t, c); len(got) != 1 {
				t.Fatalf("after requeueing one record, a call got %d", len(got))
			}
			record(t, "Rubeus feed, "+store+" store: 2,500 records published in 3 batches, a caller that hangs up mid-answer, 3 pulls, a requeue and 4 concurrent pulls",
				fmt.Sprintf("pages %v then []; the hung-up page served again; after the requeue the 4 concurrent pulls got disjoint pages", sizes), "0 records; none served twice")
		})
	}
}

// A kill -9 between publish and call loses nothing, on both stores.
func TestRubeusFeedSurvivesKill9(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			c := startCaddy(t, strings.Replace(feedCaddyfile, "{STORE}", storeLine(t, store), 1), "RUBEUS_PASS=rb-pass")
			publishRecords(t, c, 0, 1000, "k1")
			c.Kill()
			c.start()
			if got := pull(t, c); len(got) != 1000 {
				t.Fatalf("after kill -9: %d of the 1000 published records", len(got))
			}
		})
	}
}

// Two instances on one Redis serve one feed: concurrent calls to both never get the same
// record, and together they get every one.
func TestRubeusFeedTwoInstancesOneRedis(t *testing.T) {
	cfg := strings.Replace(feedCaddyfile, "{STORE}", "store redis "+redistest.Start(t).URL(), 1)
	a := startCaddy(t, cfg, "RUBEUS_PASS=rb-pass")
	b := startCaddy(t, cfg, "RUBEUS_PASS=rb-pass")
	publishRecords(t, a, 0, 1000, "i1")
	publishRecords(t, b, 1000, 2000, "i2")
	var mu sync.Mutex
	seen := map[string]int{}
	parallel(4, func(i int) {
		c := a
		if i%2 == 1 {
			c = b
		}
		for _, code := range pull(t, c) {
			mu.Lock()
			seen[code]++
			mu.Unlock()
		}
	})
	for code, n := range seen {
		if n != 1 {
			t.Fatalf("record %s served %d times across the instances", code, n)
		}
	}
	if len(seen) != 2000 {
		t.Fatalf("the two instances served %d of 2000 records", len(seen))
	}
}

// storeLine is the webhooks option's store line for "embedded" or "redis" (a fresh
// redis-server).
func storeLine(t *testing.T, store string) string {
	if store == "redis" {
		return "store redis " + redistest.Start(t).URL()
	}
	return "store embedded"
}

func basicToken(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// smallReceiveBuffer makes a client socket that takes an answer slowly: a 4 KB window.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}
