// Command outbound measures Hookgate's outbound path end to end: it runs the built Caddy
// with one endpoint pointing at a local sink, publishes events through webhook_publish
// (each 202 means the event is durable), and reports the publish rate, the
// published-to-delivered rate and delivery latency percentiles.
//
//	go run ./bench/outbound -caddy ./caddy -store embedded -n 20000 -c 64
//	go run ./bench/outbound -caddy ./caddy -store redis://127.0.0.1:6379 -n 20000 -c 64
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func main() {
	caddyBin := flag.String("caddy", "./caddy", "the built Caddy binary")
	store := flag.String("store", "embedded", "embedded, or a redis:// URL")
	n := flag.Int("n", 20000, "events to publish")
	conc := flag.Int("c", 64, "concurrent publishers")
	workers := flag.Int("workers", 64, "endpoint concurrency")
	profile := flag.String("cpuprofile", "", "write a CPU profile of Caddy during publishing to this file")
	allocs := flag.String("allocprofile", "", "write Caddy's allocation profile after the run to this file")
	flag.Parse()

	// The sink records when each event id first arrives.
	var mu sync.Mutex
	arrived := make(map[string]time.Time, *n)
	var requests atomic.Int64
	sinkL, _ := net.Listen("tcp", "127.0.0.1:0")
	go http.Serve(sinkL, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		now := time.Now()
		id := r.Header.Get("Webhook-Id")
		requests.Add(1)
		mu.Lock()
		if _, ok := arrived[id]; !ok {
			arrived[id] = now
		}
		mu.Unlock()
		w.WriteHeader(204)
	}))

	dir, _ := os.MkdirTemp("", "hookgate-bench")
	defer os.RemoveAll(dir)
	port, admin := freePort(), freePort()
	storeLine := "store embedded " + filepath.Join(dir, "store.db")
	if *store != "embedded" {
		storeLine = "store redis " + *store + " {\n\t\t\tkey_prefix bench" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":\n\t\t}"
	}
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	log {
		level ERROR
	}
	webhooks {
		%s
		endpoint sink {
			url http://%s/
			allow_private
			concurrency %d
		}
	}
}
http://127.0.0.1:%d {
	webhook_publish
}
`, admin, storeLine, sinkL.Addr(), *workers, port)
	cfgPath := filepath.Join(dir, "Caddyfile")
	_ = os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd := exec.Command(*caddyBin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			fmt.Fprintln(os.Stderr, "caddy did not start:", logs.String())
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	published := make([]time.Time, *n)
	ids := make([]string, *n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	body := []byte(`{"type":"invoice.paid","data":{"invoice":"INV-0001","amount":1234.56,"currency":"BRL","customer":{"id":42,"name":"Ana"}}}`)
	cpu0 := cpuSeconds(cmd.Process.Pid)
	start := time.Now()
	if *profile != "" {
		go func() {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=2", admin))
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return
			}
			defer resp.Body.Close()
			f, _ := os.Create(*profile)
			_, _ = io.Copy(f, resp.Body)
			f.Close()
		}()
	}
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest("POST", base+"/", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Webhook-Event-Type", "invoice.paid")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					failed.Add(1)
					continue
				}
				s := string(b)
				i0 := strings.Index(s, `"id":"`) + 6
				ids[i] = s[i0 : i0+strings.IndexByte(s[i0:], '"')]
				published[i] = t0
			}
		}()
	}
	wg.Wait()
	pubDone := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		if got >= *n-int(failed.Load()) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	caddyCPU := cpuSeconds(cmd.Process.Pid) - cpu0
	if *allocs != "" {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/allocs", admin)); err == nil {
			f, _ := os.Create(*allocs)
			_, _ = io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
	}
	mu.Lock()
	var last time.Time
	lat := make([]time.Duration, 0, *n)
	for i, id := range ids {
		if at, ok := arrived[id]; ok {
			lat = append(lat, at.Sub(published[i]))
			if at.After(last) {
				last = at
			}
		}
	}
	mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond)
	}
	total := last.Sub(start)
	fmt.Printf("store=%s events=%d publishers=%d workers=%d failed=%d\n", *store, *n, *conc, *workers, failed.Load())
	fmt.Printf("publish: %.0f events/s (202 = durable)\n", float64(*n)/pubDone.Seconds())
	fmt.Printf("published-to-delivered: %.0f events/s (%d delivered in %v, %d requests)\n",
		float64(len(lat))/total.Seconds(), len(lat), total.Round(time.Millisecond), requests.Load())
	fmt.Printf("caddy CPU: %.2fs over %v (%.2f cores), %.0fµs per event\n", caddyCPU, total.Round(time.Millisecond),
		caddyCPU/total.Seconds(), caddyCPU/float64(len(lat))*1e6)
	fmt.Printf("latency publish->delivered: p50 %v p90 %v p99 %v max %v\n", pct(.5), pct(.9), pct(.99), pct(1))
}

// cpuSeconds reads a process's user+system CPU time from /proc (Linux).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}
