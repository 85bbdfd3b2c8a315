package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hostileCaddyfile = `{
	{GLOBAL}
	servers {
		timeouts {
			read_header 1s
			read_body 2s
		}
		max_header_size 16KB
	}
	webhooks {
		store embedded
	}
}
http://127.0.0.1:{PORT} {
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key {env.TOTVS_KEY}
			max_body 64KB
		}
		reverse_proxy {BACKEND}
	}
}
`

// rawExchange writes req on a fresh connection (with the write function pacing it) and
// returns the status line and how many bytes were written before the server answered
// or closed the connection.
func rawExchange(t *testing.T, addr string, write func(w io.Writer) error) (status string, took time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	done := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		done <- strings.TrimSpace(line)
	}()
	go func() { _ = write(conn) }()
	select {
	case status = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer and no close in 30s")
	}
	return status, time.Since(start)
}

// countingWriter stops the writer once the server has answered.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func TestHostileInput(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, strings.Replace(hostileCaddyfile, "{BACKEND}", be.Addr, 1), totvsKey)
	u := c.Base() + "/totvs"
	key := []string{"X-Api-Key", "tk-456"}
	addr := fmt.Sprintf("127.0.0.1:%d", c.Port)

	expect := func(name string, body []byte, status int, detail string, hdr ...string) {
		t.Helper()
		start := time.Now()
		code, h, rb := send(t, u, body, append(append([]string{}, key...), hdr...)...)
		took := time.Since(start)
		if code != status || (detail != "" && !strings.Contains(string(rb), detail)) {
			t.Errorf("%s: %d %s, want %d containing %q", name, code, rb, status, detail)
			return
		}
		if status >= 400 && h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", name, h.Get("Content-Type"))
		}
		record(t, "hostile: "+name, fmt.Sprintf("%d in %v", code, took.Round(time.Millisecond)), "nothing; not handed on")
	}
	before := be.Count()
	expect("nesting 60,000 levels deep", bytes.Repeat([]byte("["), 60000), 400, "nesting deeper than 64")
	expect("number 1e999999", []byte(`{"eventId": 1e999999}`), 400, "exponent")
	expect("number with 1,000 digits", []byte(`{"eventId": `+strings.Repeat("9", 1000)+`}`), 400, "longer than 100")
	expect("invalid UTF-8", []byte("{\"eventId\": \"\xff\xfe\"}"), 400, "invalid UTF-8 at byte offset 13")
	expect("duplicate keys", []byte(`{"eventId":"a","eventId":"b"}`), 400, "duplicate object key")
	// Lone UTF-16 surrogates in escapes are no more text than invalid UTF-8 is: refused with
	// the offset and the pointer of the string, before the schema runs.
	won := string(sample(t, "totvs_crm/opportunity-won.json"))
	for _, tc := range []struct{ name, esc, pointer string }{
		{"a lone high surrogate", `\ud800`, "/workflow/description"},
		{"a lone low surrogate", `\uDC00 tail`, "/workflow/description"},
		{"a high surrogate then a non-low one", `\ud83d\u0041`, "/workflow/description"},
		{"a high surrogate then a high one", `x\uD83D\uD83D`, "/workflow/description"},
		{"a high surrogate at the end", `\ud800`, "/trigger/description"},
	} {
		field := `"Enviar oportunidade ganha ao ERP"`
		if tc.pointer == "/trigger/description" {
			field = `"Opportunity won"`
		}
		body := strings.Replace(won, field, `"`+tc.esc+`"`, 1)
		expect(tc.name, []byte(body), 400, `"pointer":"`+tc.pointer+`"`)
		expect(tc.name, []byte(body), 400, "surrogate")
	}
	expect("text/plain", []byte(`{}`), 415, "text/plain", "Content-Type", "text/plain")
	expect("charset ISO-8859-1", []byte(`{}`), 415, "UTF-8", "Content-Type", "application/json; charset=iso-8859-1")
	expect("no Content-Type", []byte(`{}`), 415, "no Content-Type", "Content-Type", "")
	expect("60 KB string in a field", []byte(`{"eventId":"`+strings.Repeat("a", 60000)+`"}`), 422, "")
	expect("declared body over max_body (50 MB)", bytes.Repeat([]byte(" "), 70000), 413, "limit of 64000")
	if be.Count() != before {
		t.Fatalf("hostile input reached the backend %d times", be.Count()-before)
	}
	// A proper pair passes.
	if code, _, rb := send(t, u, []byte(strings.Replace(won, "Opportunity won", `won \ud83d\ude00`, 1)), key...); code != 200 {
		t.Errorf("a surrogate pair (U+1F600): %d %s", code, rb)
	}

	// A streamed (chunked) body of 50 MB: 413, and reading stops at the limit.
	sent := &countingWriter{}
	status, took := rawExchange(t, addr, func(w io.Writer) error {
		sent.w = w
		fmt.Fprintf(sent, "POST /totvs HTTP/1.1\r\nHost: %s\r\nX-Api-Key: tk-456\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", addr)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for i := 0; i < 800; i++ { // 50 MB
			if _, err := fmt.Fprintf(sent, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if !strings.Contains(status, "413") || sent.n > 16<<20 {
		t.Errorf("chunked 50 MB: %q after %d bytes sent", status, sent.n)
	}
	record(t, "hostile: chunked body of 50 MB (max_body 64 KB)", fmt.Sprintf("%s in %v; the client could push %.1f MB before the answer (socket buffers)", status[9:], took.Round(time.Millisecond), float64(sent.n)/(1<<20)), "nothing")

	// A valid chunked body without a length is accepted and handed on with one.
	body := totvsEvent(t, "60606060-6060-4060-8060-606060606060")
	req, _ := http.NewRequest("POST", u, io.MultiReader(bytes.NewReader(body[:10]), bytes.NewReader(body[10:])))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", "tk-456")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	last := be.Got()[be.Count()-1]
	if resp.StatusCode != 200 || !bytes.Equal(last.Body, body) || last.Length != int64(len(body)) {
		t.Fatalf("chunked valid body: %d, backend got %d bytes with Content-Length %d", resp.StatusCode, len(last.Body), last.Length)
	}
	record(t, "chunked body without Content-Length (valid)", "200; handed on byte-for-byte with Content-Length", "nothing")

	// Slow senders are cut off by Caddy's timeouts: the client sends 5 bytes a second (a
	// deliberately slow client; its pace is the attack, not a wait), and the connection is
	// cut before it has sent everything. Without the timeouts the headers would take 12 s
	// and the body 200 s. How long the cut took is recorded, not asserted: on a loaded
	// machine timers fire late.
	var wrote atomic.Int64
	msg := "POST /totvs HTTP/1.1\r\nHost: " + addr + "\r\nX-Api-Key: tk-456\r\n"
	status, took = rawExchange(t, addr, func(w io.Writer) error {
		for i := 0; i < len(msg); i++ {
			if _, err := w.Write([]byte{msg[i]}); err != nil {
				return err
			}
			wrote.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	if n := wrote.Load(); n >= int64(len(msg)) {
		t.Errorf("slow headers: the client sent all %d bytes over %v before the connection was cut (read_header 1s)", n, took)
	}
	record(t, "hostile: headers at 5 bytes/s (read_header 1s)", fmt.Sprintf("connection closed after %v %s", took.Round(100*time.Millisecond), status), "nothing")
	wrote.Store(0)
	status, took = rawExchange(t, addr, func(w io.Writer) error {
		fmt.Fprintf(w, "POST /totvs HTTP/1.1\r\nHost: %s\r\nX-Api-Key: tk-456\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", addr)
		for i := 0; i < 1000; i++ {
			if _, err := w.Write([]byte{' '}); err != nil {
				return err
			}
			wrote.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	if n := wrote.Load(); n >= 1000 {
		t.Errorf("slow body: the client sent all 1000 bytes over %v before the connection was cut (read_body 2s)", took)
	}
	record(t, "hostile: body at 5 bytes/s (read_body 2s)", fmt.Sprintf("%s after %v", strings.TrimPrefix(status, "HTTP/1.1 "), took.Round(100*time.Millisecond)), "nothing; not handed on")

	// Header flood: 2,000 headers, about 200 KB.
	hdr := []string{}
	for i := 0; i < 2000; i++ {
		hdr = append(hdr, fmt.Sprintf("X-Flood-%d", i), strings.Repeat("f", 90))
	}
	code, _, _ := send(t, u, body, append(append([]string{}, key...), hdr...)...)
	if code != 431 {
		t.Errorf("header flood: %d, want 431", code)
	}
	record(t, "hostile: 2,000 headers, 200 KB (max_header_size 16KB)", fmt.Sprintf("%d", code), "nothing")

	// Credential guessing: every wrong credential gets the same answer, byte for byte.
	var answers []string
	for _, k := range []string{"", "x", "tk-45", "tk-457", "tk-4567", strings.Repeat("k", 500)} {
		code, h, rb := send(t, u, totvsEvent(t, "61616161-6161-4161-8161-616161616161"), "X-Api-Key", k)
		answers = append(answers, fmt.Sprintf("%d %s %s", code, h.Get("Content-Type"), rb))
	}
	for _, a := range answers[1:] {
		if a != answers[0] || !strings.HasPrefix(a, "401") {
			t.Fatalf("credential guesses got different answers:\n%s", strings.Join(answers, "\n"))
		}
	}
	record(t, "hostile: credential guessing (missing, short, near miss, long)", "401 with an identical body for all; constant-time compare of SHA-256 digests", "nothing")
}
