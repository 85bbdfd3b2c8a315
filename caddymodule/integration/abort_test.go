package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// A sender that closes its connection as soon as it has read the status line (as some
// clients do with Connection: close) makes reverse_proxy abort the copy of the backend's
// answer (it panics with http.ErrAbortHandler). The webhook was handed on and the backend
// answered 200: it must still be counted, logged in the request log and marked as
// processed. Found by the console's outside review: 10-25% of accepted webhooks sent with
// Python's urllib were missing from the metrics, the charts and the request log.
func TestAbortedAnswerIsStillRecorded(t *testing.T) {
	big := strings.Repeat("x", 256<<10) // larger than the socket buffers: the copy outlives the client
	var got atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(big))
	}))
	t.Cleanup(backend.Close)
	c := startCaddy(t, strings.NewReplacer("{SINKADDR}", strings.TrimPrefix(backend.URL, "http://")).Replace(`{
	{GLOBAL}
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key pl-123
		}
		reverse_proxy {SINKADDR}
	}
}
`))
	const n = 30
	for i := 0; i < n; i++ {
		body := ploomesContact(700000+i, false, false)
		conn, err := net.Dial("tcp", c.Base()[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /ploomes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Ploomes-Validation-Key: pl-123\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		status, err := bufio.NewReader(conn).ReadString('\n')
		_ = conn.Close() // gone before the answer's body
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
			t.Fatalf("request %d: %q %v", i, status, err)
		}
	}
	accepted := regexp.MustCompile(`caddy_webhook_inbound_requests_total\{outcome="accepted",route="ploomes",source="ploomes"\} (\d+)`)
	count := func() int {
		m := accepted.FindSubmatch(metricsText(t, c))
		if m == nil {
			return 0
		}
		v, _ := strconv.Atoi(string(m[1]))
		return v
	}
	testwait.Until(t, 5*time.Second, func() bool { return count() == n }, fmt.Sprintf("%d accepted webhooks counted", n))
	var recs []map[string]any
	getJSON(t, c.AdminURL()+"/webhooks/inbound/ploomes/requests?limit=1000", &recs)
	if len(recs) != n {
		t.Fatalf("the request log has %d of the %d requests handed on", len(recs), n)
	}
	// Marked as processed: the sender's retry of one is a duplicate, not a second hand-off.
	before := got.Load()
	if code, h, _ := send(t, c.Base()+"/ploomes", ploomesContact(700000, false, false), "X-Ploomes-Validation-Key", "pl-123"); code != 200 || h.Get("Webhook-Duplicate") != "true" {
		t.Fatalf("a retry of an aborted answer's event: %d duplicate=%q", code, h.Get("Webhook-Duplicate"))
	}
	if got.Load() != before {
		t.Fatal("the retry reached the backend again")
	}
}
