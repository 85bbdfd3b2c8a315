// Package integration drives the real Caddy binary (built from ./cmd/caddy) over HTTP.
// It imports nothing from Caddy, so its test binary stays small.
package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
)

var caddyBin string

func TestMain(m *testing.M) {
	if p := os.Getenv("HOOKGATE_CADDY"); p != "" {
		caddyBin = p
	} else {
		dir, err := os.MkdirTemp("", "hookgate-caddy")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		caddyBin = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", caddyBin, "../../cmd/caddy")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building caddy:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	os.Exit(code)
}

func freePort(t testing.TB) int { return redistest.FreePort(t) }

// Caddy is one running Caddy process.
type Caddy struct {
	t       testing.TB
	Port    int
	Admin   int
	DataDir string
	cfgPath string
	env     []string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   *sync.Mutex
	stopped bool
	exited  chan struct{} // closed when the process has exited
}

// Base is the gateway's base URL.
func (c *Caddy) Base() string { return "http://127.0.0.1:" + strconv.Itoa(c.Port) }

// AdminURL is the admin endpoint's base URL.
func (c *Caddy) AdminURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.Admin) }

// globalOptions opens every test Caddyfile's global options block (a Caddyfile names it
// {GLOBAL}): the admin endpoint and the HTTP port on the test's free loopback ports, and
// nothing persisted between runs.
const globalOptions = "admin 127.0.0.1:{ADMIN}\n\thttp_port {PORT}\n\tpersist_config off"

// fillConfig substitutes {GLOBAL}, {PORT} and {ADMIN} in caddyfile, and {DATA} when data
// is not empty.
func fillConfig(caddyfile string, port, admin int, data string) string {
	cfg := strings.ReplaceAll(caddyfile, "{GLOBAL}", globalOptions)
	pairs := []string{"{PORT}", strconv.Itoa(port), "{ADMIN}", strconv.Itoa(admin)}
	if data != "" {
		pairs = append(pairs, "{DATA}", data)
	}
	return strings.NewReplacer(pairs...).Replace(cfg)
}

// startCaddy writes caddyfile (filled in by fillConfig) and runs Caddy on it with env, a
// private data directory and free ports.
func startCaddy(t testing.TB, caddyfile string, env ...string) *Caddy {
	t.Helper()
	dir := t.TempDir()
	c := &Caddy{t: t, Port: freePort(t), Admin: freePort(t), DataDir: filepath.Join(dir, "data"), env: env,
		log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	cfg := fillConfig(caddyfile, c.Port, c.Admin, c.DataDir)
	c.cfgPath = filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(c.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start()
	t.Cleanup(func() {
		c.Stop()
		c.checkRaces()
	})
	return c
}

// checkRaces fails the test if Caddy, built with -race (as CI's race step builds it),
// reported a data race.
func (c *Caddy) checkRaces() {
	log := c.Log()
	i := strings.Index(log, "WARNING: DATA RACE")
	if i < 0 {
		return
	}
	end := strings.Index(log[i:], "==================")
	if end < 0 || end > 20000 {
		end = min(len(log)-i, 20000)
	}
	c.t.Errorf("caddy reported a data race:\n%s", log[i:i+end])
}

// sharedDataDir makes two instances use the same data directory (for restarts).
func (c *Caddy) start() {
	c.t.Helper()
	c.cmd = exec.Command(caddyBin, "run", "--config", c.cfgPath, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+c.DataDir, "XDG_CONFIG_HOME="+c.DataDir+"-config", "HOME="+c.DataDir)
	c.cmd.Env = append(c.cmd.Env, c.env...)
	w := &lockedWriter{b: c.log, mu: c.logMu}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	c.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(c.cmd)
	c.stopped = false
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(c.AdminURL() + "/config/")
		if err == nil {
			resp.Body.Close()
			if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port)); err == nil {
				conn.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			c.Stop()
			c.t.Fatalf("caddy did not come up:\n%s", c.Log())
		}
		select {
		case <-exited:
			c.stopped = true
			c.t.Fatalf("caddy exited:\n%s", c.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops Caddy gracefully (SIGTERM), killing it if it does not exit.
func (c *Caddy) Stop() {
	if c.stopped || c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.stopped = true
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Kill stops Caddy with SIGKILL.
func (c *Caddy) Kill() {
	if c.stopped {
		return
	}
	c.stopped = true
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// Restart starts Caddy again on the same config, ports and data directory.
func (c *Caddy) Restart() {
	c.Stop()
	c.start()
}

// Log returns what Caddy printed.
func (c *Caddy) Log() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.log.String()
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Backend is an internal app that records what reaches it.
type Backend struct {
	URL    string
	Addr   string
	mu     sync.Mutex
	got    []Received
	status func(n int) int // status for the n-th request (1-based)
	delay  time.Duration
	gate   chan struct{}    // if set, requests wait until it is closed
	held   map[int]Received // requests waiting at the gate now, by arrival number
	seq    int
	srv    *http.Server
}

// Hold makes requests wait until the returned function is called.
func (b *Backend) Hold() (release func()) {
	g := make(chan struct{})
	b.mu.Lock()
	b.gate = g
	b.mu.Unlock()
	return func() { close(g) }
}

// Received is one request that reached the backend.
type Received struct {
	Body   []byte
	Header http.Header
	Length int64
	Path   string
	At     time.Time // when the backend recorded it (after the gate, if held)
}

func startBackend(t testing.TB) *Backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(l)
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// newBackend serves a recording backend on l.
func newBackend(l net.Listener) *Backend {
	b := &Backend{Addr: l.Addr().String(), URL: "http://" + l.Addr().String(), held: map[int]Received{}}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := Received{Body: body, Header: r.Header.Clone(), Length: r.ContentLength, Path: r.URL.Path}
		b.mu.Lock()
		gate := b.gate
		b.seq++
		seq := b.seq
		if gate != nil {
			b.held[seq] = rec
		}
		b.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
			b.mu.Lock()
			delete(b.held, seq)
			b.mu.Unlock()
			if r.Context().Err() != nil {
				return
			}
		}
		rec.At = time.Now()
		b.mu.Lock()
		b.got = append(b.got, rec)
		n, status, delay := len(b.got), b.status, b.delay
		b.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		code := 200
		if status != nil {
			code = status(n)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	go func() { _ = b.srv.Serve(l) }()
	return b
}

// Count returns how many requests reached the backend.
func (b *Backend) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

// Held returns the requests waiting at the gate now (see Hold), in no order.
func (b *Backend) Held() []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Received, 0, len(b.held))
	for _, r := range b.held {
		out = append(out, r)
	}
	return out
}

// Got returns the received requests.
func (b *Backend) Got() []Received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Received(nil), b.got...)
}

// SetStatus sets how the backend answers the n-th request.
func (b *Backend) SetStatus(f func(n int) int) {
	b.mu.Lock()
	b.status = f
	b.mu.Unlock()
}

func sample(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "samples", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// send POSTs body with headers (name, value pairs) and returns status, headers and body.
func send(t testing.TB, url string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil && errors.Is(err, io.EOF) && time.Since(time.Unix(0, lastReload.Load())) < 2*time.Second {
		// Caddy's reload race: the old server's accept loop can take a new connection just
		// before it closes its listener; net/http then closes it unanswered once it has read
		// the request (conn.serve checks shuttingDown), so nothing was handled. A sender
		// retries such a request; so does the test, once.
		t.Logf("%s: %v within 2 s of a reload; retrying once", url, err)
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, rb
}

// lastReload is when the last POST /load returned (Unix nanoseconds), for send's retry.
var lastReload atomic.Int64
