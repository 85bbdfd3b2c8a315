package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The findings of the outside security review and the first-time user (issue 11), each
// reproduced through the built Caddy as it was observed.

const slowBodyCaddyfile = `{
	admin 127.0.0.1:{ADMIN}
	http_port {PORT}
	persist_config off
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
	resp, err := http.Get(c.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := heapAlloc.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no go_memstats_heap_alloc_bytes in the metrics")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
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
	time.Sleep(1500 * time.Millisecond) // every handler is now blocked reading its body
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
