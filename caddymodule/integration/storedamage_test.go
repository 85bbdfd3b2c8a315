package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// Issue 20, item 5: a damaged embedded store file. Reproduced as reported: a file holding
// dedupe ids, then `dd if=/dev/urandom of=store.db bs=4096 seek=5 count=3 conv=notrunc`.

const damageCaddyfile = `{
	{GLOBAL}
	webhooks {
		store embedded {FILE}
	}
}
http://127.0.0.1:{PORT} {
	handle /hook {
		webhook_receive {
			name hook
			auth none
			event_id json:/id
		}
		reverse_proxy {BACKEND}
	}
}
`

func damageConfig(file, backend string) string {
	return strings.NewReplacer("{FILE}", file, "{BACKEND}", backend).Replace(damageCaddyfile)
}

// ddPages does what `dd if=/dev/urandom of=path bs=4096 seek=5 count=3 conv=notrunc` does
// (from a seeded source, so a failure can be replayed).
func ddPages(t *testing.T, path string, seed uint64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 8*4096 {
		t.Fatalf("%s has %d bytes: too small for pages 5-7 to be damaged", path, fi.Size())
	}
	writeGarbage(t, path, seed, 5, 3)
}

// writeGarbage overwrites count pages from page first with seeded random bytes.
func writeGarbage(t *testing.T, path string, seed uint64, first, count int) {
	t.Helper()
	garbage := make([]byte, count*4096)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(garbage, int64(first)*4096); err != nil {
		t.Fatal(err)
	}
}

func dedupeID(i int) []byte { return []byte(fmt.Sprintf(`{"id":"evt-%04d","n":%d}`, i, i)) }

// fillDamageFile writes 300 dedupe ids into a fresh file through Caddy and stops it cleanly
// (a clean stop flushes every mark), so the ids are on disk.
func fillDamageFile(t *testing.T, file, backend string) {
	t.Helper()
	c := startCaddy(t, damageConfig(file, backend))
	for i := 0; i < 300; i++ {
		if code, _, body := send(t, c.Base()+"/hook", dedupeID(i)); code != 200 {
			t.Fatalf("id %d: %d %s", i, code, body)
		}
	}
	c.Stop()
}

// post sends one webhook and reports a dropped connection as an error instead of failing.
func post(url string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// A damaged file is a config error naming the file: at start, and on a POST /load, where the
// running config keeps serving.
func TestDamagedStoreFileIsAConfigError(t *testing.T) {
	be := startBackend(t)
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "store.db"), filepath.Join(dir, "good.db")
	fillDamageFile(t, bad, be.Addr)
	ddPages(t, bad, 20)

	// At start: refused, with an error that names the file (not a crash, not a start).
	port, admin := freePort(t), freePort(t)
	cfg := fillConfig(damageConfig(bad, be.Addr), port, admin, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, "run", "--config", writeTemp(t, cfg), "--adapter", "caddyfile")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(home, "data"), "HOME="+home)
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if ctx.Err() != nil {
		t.Fatalf("caddy started on a file with pages 5-7 overwritten and ran until killed:\n%s", lastLines(out, 10))
	}
	if err == nil || strings.Contains(out, "panic") || strings.Contains(out, "SIGSEGV") || strings.Contains(out, "SIGBUS") ||
		!strings.Contains(out, bad) || !strings.Contains(out, "damaged") {
		t.Fatalf("start on a damaged file: want a config error naming %s as damaged, got %v:\n%s", bad, err, lastLines(out, 30))
	}

	// On a POST /load: an error answer naming the file; the running config keeps serving.
	c := startCaddy(t, damageConfig(good, be.Addr))
	adapted, err := runCmd(caddyBin, "adapt", "--config",
		writeTemp(t, fillConfig(damageConfig(bad, be.Addr), c.Port, c.Admin, "")), "--adapter", "caddyfile")
	if err != nil {
		t.Fatal(err, adapted)
	}
	resp, err := http.Post(c.AdminURL()+"/load", "application/json", strings.NewReader(string(jsonOnly(adapted))))
	if err != nil {
		t.Fatalf("POST /load onto the damaged file: %v\n%s", err, lastLines(c.Log(), 20))
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || !strings.Contains(string(msg), bad) || !strings.Contains(string(msg), "damaged") {
		t.Fatalf("POST /load onto the damaged file: want an error naming it, got %d %s", resp.StatusCode, msg)
	}
	for i := 0; i < 20; i++ {
		if code, _, body, err := post(c.Base()+"/hook", dedupeID(1000+i)); err != nil || code != 200 {
			t.Fatalf("the running config stopped serving after the refused load: %d %s %v\n%s", code, body, err, lastLines(c.Log(), 20))
		}
	}
	if strings.Contains(c.Log(), "panic") {
		t.Fatalf("a panic in the log:\n%s", lastLines(c.Log(), 30))
	}
	record(t, "embedded store file with pages 5-7 overwritten (dd from /dev/urandom), at start and on POST /load",
		"config error naming the file as damaged; the load is refused and the running config keeps serving", "nothing that was in the running config")
}

// storeStatus is GET /webhooks/store.
type storeStatus struct {
	Store   string `json:"store"`
	Damaged bool   `json:"damaged"`
	Error   string `json:"error"`
	Tasks   int    `json:"tasks"`
}

// Damage that appears while Caddy runs: every request still gets an answer (a 503 problem
// naming the store where the file could not be read, never a dropped connection), the
// background tasks stop, the damage is logged once and shown in the admin API and metrics,
// and the process stays up.
func TestStoreDamagedWhileRunning(t *testing.T) {
	be := startBackend(t)
	file := filepath.Join(t.TempDir(), "store.db")
	fillDamageFile(t, file, be.Addr)
	c := startCaddy(t, damageConfig(file, be.Addr))
	var st storeStatus
	getJSON(t, c.AdminURL()+"/webhooks/store", &st)
	if st.Damaged || st.Tasks == 0 || !strings.Contains(st.Store, file) {
		t.Fatalf("before the damage: %+v", st)
	}
	// Every page but the two meta pages: which pages hold the dedupe marks depends on how
	// the flushes were batched, and pages 5-7 alone were sometimes pages nothing reads.
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	writeGarbage(t, file, 20, 2, int(fi.Size()/4096)-2)

	counts := map[int]int{}
	dropped := 0
	var problem []byte
	for i := 0; i < 300; i++ {
		code, h, body, err := post(c.Base()+"/hook", dedupeID(i))
		if err != nil {
			dropped++
			continue
		}
		counts[code]++
		if code == 503 {
			if h.Get("Content-Type") != "application/problem+json" || h.Get("Retry-After") == "" {
				t.Fatalf("503 without a problem body or Retry-After: %v %s", h, body)
			}
			problem = body
		} else if code != 200 || h.Get("Webhook-Duplicate") != "true" {
			t.Fatalf("old id %d: %d %v %s", i, code, h, body)
		}
	}
	if dropped > 0 {
		t.Fatalf("%d of 300 requests with old ids got no answer (connection dropped); answers %v\n%s", dropped, counts, lastLines(c.Log(), 20))
	}
	if counts[503] == 0 {
		t.Fatalf("no request met the damage (answers %v): the test damaged nothing that is read", counts)
	}
	var p struct {
		Type, Detail string
		Status       int
	}
	if err := json.Unmarshal(problem, &p); err != nil || p.Status != 503 || !strings.Contains(p.Detail, "dedupe store") {
		t.Fatalf("the 503 does not name the store: %s", problem)
	}
	// New ids too: the store refuses everything once it is known to be damaged (writing on
	// would spread the damage), with the same answer.
	for i := 0; i < 20; i++ {
		code, _, body, err := post(c.Base()+"/hook", dedupeID(5000+i))
		if err != nil || code != 503 {
			t.Fatalf("new id after the damage: %d %s %v", code, body, err)
		}
	}

	// The background tasks (flusher, sweepers) stop; the status names the file.
	testwait.UntilNil(t, 30*time.Second, func() error {
		getJSON(t, c.AdminURL()+"/webhooks/store", &st)
		if st.Damaged && st.Tasks == 0 {
			return nil
		}
		return fmt.Errorf("store status after the damage: %+v", st)
	}, "the store to be damaged with its tasks stopped")
	if !strings.Contains(st.Error, file) || !strings.Contains(st.Error, "damaged") {
		t.Fatalf("status error does not name the file: %+v", st)
	}
	if !strings.Contains(string(metricsText(t, c)), "\ncaddy_webhook_store_damaged 1") {
		t.Fatalf("no caddy_webhook_store_damaged 1 in the metrics")
	}
	select {
	case <-c.exited:
		t.Fatalf("caddy exited:\n%s", lastLines(c.Log(), 30))
	default:
	}
	if code, _, _, err := post(c.Base()+"/hook", dedupeID(9999)); err != nil || code != 503 {
		t.Fatalf("after the tasks stopped: %d %v", code, err)
	}
	log := c.Log()
	if n := strings.Count(log, "every store call is refused"); n != 1 {
		t.Fatalf("the damage was logged %d times, want once:\n%s", n, lastLines(log, 30))
	}
	if strings.Contains(log, "goroutine ") && strings.Contains(log, "panic:") {
		t.Fatalf("a panic escaped:\n%s", lastLines(log, 30))
	}
	record(t, "embedded store file: pages 5-7 overwritten while Caddy runs, then the 300 old ids sent again",
		fmt.Sprintf("%d×200 duplicate, %d×503 problem naming the dedupe store, 0 dropped; later ids 503; flusher and sweepers stopped, damage logged once, in /webhooks/store and caddy_webhook_store_damaged; process up", counts[200], counts[503]),
		"nothing answered 2xx that was not handed on")
}
