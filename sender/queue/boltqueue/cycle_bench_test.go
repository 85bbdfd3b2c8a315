package boltqueue_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/queue/queuetest"
)

// BenchmarkCycle measures what an async webhook costs the embedded queue end to end: 32
// concurrent writers each enqueue an event (durably, as before a 202) while one worker, as
// the dispatcher's runner does, leases up to 64 due deliveries, and finishes them
// delivered. ns/op is per event, from its enqueue to its finish. The events' ids are
// fresh and time-ordered, as an async route's are on this store; HOOKGATE_BENCH_IDS=hashed
// gives them ids that hash into delivery ids spread over the key space (as sender-chosen
// ids, and a deduping route's before 2026-12-04, do).
//
// HOOKGATE_BENCH_FILL=N first fills the store with N delivered deliveries (kept for the
// retention, as a store that has run for days holds them); the filled file is built once
// into HOOKGATE_BENCH_FILL_DIR (default the OS temp dir) and copied for each run, so
// `-bench Cycle -benchtime 20000x` compares a fresh store and a grown one:
//
//	go test ./sender/queue/boltqueue -run X -bench Cycle -benchtime 20000x
//	HOOKGATE_BENCH_FILL=1000000 go test ./sender/queue/boltqueue -run X -bench Cycle -benchtime 20000x -timeout 1h
func BenchmarkCycle(b *testing.B) {
	path := filepath.Join(b.TempDir(), "q.db")
	fill, _ := strconv.Atoi(os.Getenv("HOOKGATE_BENCH_FILL"))
	if fill > 0 {
		copyFile(b, filledStore(b, fill), path)
	}
	h := boltdb.New(path)
	s := boltqueue.New(h, boltqueue.Options{Retention: 72 * time.Hour})
	defer func() { _ = h.Close() }()
	// Open the file (and its check at open, which walks every page) before the clock starts.
	if _, err := s.Status(context.Background(), "sink"); err != nil {
		b.Fatal(err)
	}
	db, err := h.DB()
	if err != nil {
		b.Fatal(err)
	}
	id := func(int64) string { return queue.NewEventID() }
	if os.Getenv("HOOKGATE_BENCH_IDS") == "hashed" {
		id = func(n int64) string {
			return "totvs-" + strconv.FormatInt(n, 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
	}
	var w0, c0 int64
	queuetest.Cycle(b, s, id, func() { w0, c0 = writtenBytes(), db.Commits() }, func() {
		if w := writtenBytes(); w > 0 {
			b.ReportMetric(float64(w-w0)/float64(b.N)/1024, "written-KB/op")
		}
		b.ReportMetric(float64(b.N)/float64(max(db.Commits()-c0, 1)), "events/commit")
	})
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
	}
}

// filledStore returns a store file holding n delivered deliveries of 1 KB events, built
// once per n.
func filledStore(b *testing.B, n int) string {
	dir := os.Getenv("HOOKGATE_BENCH_FILL_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("hookgate-bench-queue-%s-%d.db", fillLayout, n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".part"
	_ = os.Remove(tmp)
	h := boltdb.New(tmp)
	s := boltqueue.New(h, boltqueue.Options{Retention: 72 * time.Hour})
	ctx := context.Background()
	const batch = 2000
	evs := make([]queue.Event, 0, batch)
	for i := 0; i < n; i += batch {
		evs = evs[:0]
		for j := i; j < i+batch && j < n; j++ {
			evs = append(evs, queue.Event{ID: "fill-" + strconv.Itoa(j) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), Type: "webhook", Body: queuetest.CycleBody})
		}
		if _, err := s.EnqueueBatch(ctx, "sink", evs); err != nil {
			b.Fatal(err)
		}
		ds, err := s.Lease(ctx, "sink", len(evs), time.Now().Add(time.Second), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		res := make([]queue.Result, len(ds))
		for k, d := range ds {
			res[k] = queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}
		}
		if err := s.Finish(ctx, res); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// fillLayout names the store's layout in the filled file's name, so a file built by an
// earlier layout is not measured as this one.
const fillLayout = "records-by-time"

func copyFile(b *testing.B, from, to string) {
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
}

// writtenBytes is what this process has written so far (wchar in /proc/self/io: every
// write and pwrite, the store file's pages among them), or 0 where that is not known.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
