package boltqueue_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
)

// cycleBody is a 1 KB webhook body, as an async route queues it.
var cycleBody = []byte(`{"Id":"` + fmt.Sprintf("%0990d", 7) + `"}`)

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
	ctx := context.Background()
	// Open the file (and its check at open, which walks every page) before the clock starts.
	if _, err := s.Status(ctx, "sink"); err != nil {
		b.Fatal(err)
	}
	var finished atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the worker
		defer wg.Done()
		for {
			ds, err := s.Lease(ctx, "sink", 64, time.Now(), time.Minute)
			if err != nil {
				b.Error(err)
				return
			}
			if len(ds) == 0 {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Microsecond):
				}
				continue
			}
			res := make([]queue.Result, len(ds))
			for i, d := range ds {
				res[i] = queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}
			}
			if err := s.Finish(ctx, res); err != nil {
				b.Error(err)
				return
			}
			finished.Add(int64(len(ds)))
		}
	}()
	hashed := os.Getenv("HOOKGATE_BENCH_IDS") == "hashed"
	var n atomic.Int64
	b.SetParallelism(16) // 32 writers on 2 cores
	b.ReportAllocs()
	b.SetBytes(int64(len(cycleBody)))
	db, err := h.DB()
	if err != nil {
		b.Fatal(err)
	}
	w0, c0 := writtenBytes(), db.Commits()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Add(1)
			id := queue.NewEventID()
			if hashed {
				id = "totvs-" + strconv.FormatInt(n.Load(), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			if _, err := s.Enqueue(ctx, queue.Event{ID: id, Type: "webhook", Body: cycleBody, Unique: true}, []string{"sink"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for finished.Load() < n.Load() && !b.Failed() {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if w := writtenBytes(); w > 0 {
		b.ReportMetric(float64(w-w0)/float64(b.N)/1024, "written-KB/op")
	}
	b.ReportMetric(float64(b.N)/float64(max(db.Commits()-c0, 1)), "events/commit")
	close(stop)
	wg.Wait()
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
			evs = append(evs, queue.Event{ID: "fill-" + strconv.Itoa(j) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), Type: "webhook", Body: cycleBody})
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
