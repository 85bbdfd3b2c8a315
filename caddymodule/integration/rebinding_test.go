package integration

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A page on a name the attacker rebound to this server's address (DNS rebinding) is, to
// the browser, same-origin: Host and Origin both name it. An outside review created a
// subscription and published through a catch-all site (`http://:8081`, as the default
// Caddyfile's publish site) this way, and read the new secret. A browser's write under a
// host name is refused unless its origin is listed in allowed_origins; IP addresses and
// localhost cannot be rebound.
func TestRebindingPagesCannotWrite(t *testing.T) {
	sink := startBackend(t)
	c := startCaddy(t, strings.ReplaceAll(`{
	{GLOBAL}
	webhooks {
		store embedded
		subscriptions {
			allow_private
		}
		feed contatos {
			schema rubeus_servicos_contato
		}
	}
}
http://:{PORT} {
	bind 127.0.0.1
	handle /publish {
		webhook_publish
	}
	handle /allowed/publish {
		webhook_publish {
			allowed_origins http://ops.example:{PORT}
		}
	}
	handle /subs* {
		webhook_subscriptions {
			prefix /subs
		}
	}
	handle /feed {
		webhook_feed contatos {
			auth none
		}
	}
}
`, "{SINK}", sink.URL))
	port := strconv.Itoa(c.Port)
	do := func(method, path, host, body string, hdr ...string) int {
		t.Helper()
		req, err := http.NewRequest(method, c.Base()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	json := []string{"Content-Type", "application/json", "Webhook-Event-Type", "t.x"}
	rebound := func(name string) []string {
		return append([]string{"Origin", "http://" + name + ":" + port, "Sec-Fetch-Site", "same-origin"}, json...)
	}
	sub := `{"url":"` + sink.URL + `/x","events":["*"]}`
	for _, tc := range []struct {
		name, method, path, host, body string
		hdr                            []string
		want                           int
	}{
		{"rebound subscription create", "POST", "/subs", "evil.example:" + port, sub, rebound("evil.example"), 403},
		{"rebound publish", "POST", "/publish", "evil.example:" + port, `{"a":1}`, rebound("evil.example"), 403},
		{"rebound feed call", "GET", "/feed", "evil.example:" + port, "", []string{"Sec-Fetch-Site", "same-origin"}, 403},
		{"rebound, Sec-Fetch-Site only", "POST", "/publish", "evil.example:" + port, `{"a":1}`, append([]string{"Sec-Fetch-Site", "same-origin"}, json...), 403},
		// A server-side client sends no Origin: any Host.
		{"server-side publish under a name", "POST", "/publish", "evil.example:" + port, `{"a":1}`, json, 202},
		// A browser on an address or on localhost cannot have been rebound.
		{"same-origin page on 127.0.0.1", "POST", "/publish", "127.0.0.1:" + port, `{"a":1}`, append([]string{"Origin", "http://127.0.0.1:" + port, "Sec-Fetch-Site", "same-origin"}, json...), 202},
		{"same-origin page on localhost", "POST", "/publish", "localhost:" + port, `{"a":1}`, rebound("localhost"), 202},
		// A name the operator lists is allowed.
		{"listed origin", "POST", "/allowed/publish", "ops.example:" + port, `{"a":1}`, rebound("ops.example"), 202},
	} {
		if got := do(tc.method, tc.path, tc.host, tc.body, tc.hdr...); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	var out struct{ Subscriptions []map[string]any }
	getJSON(t, c.AdminURL()+"/webhooks/subscriptions", &out)
	if len(out.Subscriptions) != 0 {
		t.Fatalf("a rebound page created %d subscriptions", len(out.Subscriptions))
	}
}

// The dashboard under a host name the operator allowed (allowed_hosts) keeps its
// actions: it checks the host, its header and the same origin itself, and the APIs it
// calls in-process must not refuse the page as rebindable.
func TestDashboardUnderAnAllowedNameCanDeleteASubscription(t *testing.T) {
	sink := startBackend(t)
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		subscriptions {
			allow_private
		}
	}
}
http://:{PORT} {
	bind 127.0.0.1
	handle /ops/* {
		webhook_dashboard {
			allowed_hosts ops.example
		}
	}
}
`)
	code, out := call(t, "POST", c.AdminURL()+"/webhooks/subscriptions", `{"url":"`+sink.URL+`/x","events":["*"]}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	req, _ := http.NewRequest(http.MethodDelete, c.Base()+"/ops/api/subscriptions/"+out["id"].(string), nil)
	req.Host = "ops.example:" + strconv.Itoa(c.Port)
	req.Header.Set("Origin", "http://ops.example:"+strconv.Itoa(c.Port))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-Hookgate-Dashboard", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("the dashboard's delete under ops.example: %d %s", res.StatusCode, b)
	}
}
