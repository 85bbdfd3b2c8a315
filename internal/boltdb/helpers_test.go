package boltdb

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// counted wraps a task so the test sees each start and each return.
func counted(task Task, starts, ends *atomic.Int32) Task {
	return func(db *DB, stop <-chan struct{}) {
		starts.Add(1)
		defer ends.Add(1)
		task(db, stop)
	}
}

// openConcurrently asks for the file from several goroutines at once.
func openConcurrently(t *testing.T, h *Handle) *DB {
	t.Helper()
	var wg sync.WaitGroup
	dbs := make([]*DB, 8)
	errs := make([]error, 8)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = h.DB() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if dbs[i] != dbs[0] {
			t.Fatal("two opens of one handle returned different files")
		}
	}
	return dbs[0]
}

// wait fails the test if ch has nothing within a (generous) bound; the bound only turns a
// hang into a failure, it decides nothing.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("10s without %s", what)
		panic("unreachable")
	}
}

func TestEveryRunsFromOpenUntilClose(t *testing.T) {
	h := New(filepath.Join(t.TempDir(), "store.db"))
	var starts, ends, calls atomic.Int32
	var closed atomic.Bool
	ran := make(chan struct{}, 1)
	h.Use(Service{Tasks: []Task{counted(Every(time.Millisecond, func(*DB) {
		if closed.Load() {
			t.Error("f called after Close returned")
		}
		calls.Add(1)
		select {
		case ran <- struct{}{}:
		default:
		}
	}), &starts, &ends)}})
	if calls.Load() != 0 || starts.Load() != 0 {
		t.Fatal("the task ran before the file was opened")
	}
	openConcurrently(t, h)
	openConcurrently(t, h)
	for i := 0; i < 3; i++ { // it runs again and again
		wait(t, ran, "a call of f")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	if s, e := starts.Load(), ends.Load(); s != 1 || e != 1 {
		t.Fatalf("task started %d times, returned %d times; want once each", s, e)
	}
	if err := h.Close(); err != nil { // a second Close starts and stops nothing
		t.Fatal(err)
	}
	if s, e := starts.Load(), ends.Load(); s != 1 || e != 1 {
		t.Fatalf("after a second Close: started %d, returned %d", s, e)
	}
}

// Close returns only once a call of f in progress has returned.
func TestEveryCloseWaitsForTheCall(t *testing.T) {
	h := New(filepath.Join(t.TempDir(), "store.db"))
	var starts, ends atomic.Int32
	var returned atomic.Bool
	entered := make(chan struct{})
	var once sync.Once
	h.Use(Service{Tasks: []Task{counted(Every(time.Millisecond, func(*DB) {
		once.Do(func() {
			close(entered)
			<-h.quit // Close has begun
			returned.Store(true)
		})
	}), &starts, &ends)}})
	openConcurrently(t, h)
	wait(t, entered, "the first call")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() || ends.Load() != 1 {
		t.Fatalf("Close returned before the call in progress (returned %v, task ended %d)", returned.Load(), ends.Load())
	}
}

// A write-behind over one bucket, with a hook in its write.
type wbFixture struct {
	h      *Handle
	w      *WriteBehind[string]
	writes atomic.Int32
	hook   func(keys []string) error // called in each write, before it puts
}

var wbBucket = []byte("wb")

// newWB declares the buffer's flusher as the service's task, wrapped by wrap, unless wrap
// is nil (the test flushes by hand).
func newWB(t *testing.T, interval time.Duration, wrap func(Task) Task) *wbFixture {
	t.Helper()
	f := &wbFixture{h: New(filepath.Join(t.TempDir(), "store.db"))}
	f.w = NewWriteBehind(interval, func(tx *bolt.Tx, keys []string, batch map[string]string) error {
		f.writes.Add(1)
		if f.hook != nil {
			if err := f.hook(keys); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := tx.Bucket(wbBucket).Put([]byte(k), []byte(batch[k])); err != nil {
				return err
			}
		}
		return nil
	}, func(failed, cur string) bool { return cur < failed })
	s := Service{Buckets: [][]byte{wbBucket}}
	if wrap != nil {
		s.Tasks = []Task{wrap(f.w.Task)}
	}
	f.h.Use(s)
	t.Cleanup(func() { _ = f.h.Close() })
	return f
}

// fileHas reads the bucket back from the file after the handle was closed.
func fileHas(t *testing.T, path string) map[string]string {
	t.Helper()
	h := New(path)
	defer h.Close()
	h.Use(Service{Buckets: [][]byte{wbBucket}})
	db, err := h.DB()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(wbBucket).ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil })
	})
	return out
}

// A close writes every value put, in one transaction, however many writers put them.
func TestWriteBehindCloseLosesNothing(t *testing.T) {
	var starts, ends atomic.Int32
	f := newWB(t, time.Hour, func(task Task) Task { return counted(task, &starts, &ends) }) // no flush before the close
	openConcurrently(t, f.h)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 250; i++ {
				f.w.Put(fmt.Sprintf("k%d-%03d", g, i), "v")
			}
		})
	}
	wg.Wait()
	if _, ok := f.w.Find("k3-100", nil); !ok {
		t.Fatal("a value put is not in memory")
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	if s, e := starts.Load(), ends.Load(); s != 1 || e != 1 {
		t.Fatalf("flusher started %d times, returned %d times; want once each", s, e)
	}
	if n := f.writes.Load(); n != 1 {
		t.Fatalf("%d writes, want the close's one", n)
	}
	if got := fileHas(t, f.h.Path()); len(got) != 2000 {
		t.Fatalf("%d values in the file after the close, want 2000", len(got))
	}
}

// A put wakes the flusher; a value stays readable while it is written, and a value put
// during a write is written by the next one.
func TestWriteBehindFlushesAndStaysReadable(t *testing.T) {
	f := newWB(t, time.Millisecond, func(task Task) Task { return task })
	writing := make(chan []string)
	release := make(chan struct{})
	f.hook = func(keys []string) error {
		writing <- keys
		<-release
		return nil
	}
	db := openConcurrently(t, f.h)
	f.w.Put("a", "1")
	if keys := wait(t, writing, "the first write"); len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("first write %v", keys)
	}
	if v, ok := f.w.Find("a", nil); !ok || v != "1" {
		t.Fatalf("while written, a is %q %v", v, ok)
	}
	if _, ok := f.w.Find("a", func(v string) bool { return v == "2" }); ok {
		t.Fatal("Find ignored its condition")
	}
	f.w.Put("b", "1")
	close(release)
	if keys := wait(t, writing, "the second write"); len(keys) != 1 || keys[0] != "b" {
		t.Fatalf("second write %v", keys)
	}
	// The first write has committed: a is no longer in memory, and is in the file.
	if _, ok := f.w.Find("a", nil); ok {
		t.Fatal("a is still in memory after its write committed")
	}
	var inFile string
	_ = db.View(func(tx *bolt.Tx) error { inFile = string(tx.Bucket(wbBucket).Get([]byte("a"))); return nil })
	if inFile != "1" {
		t.Fatalf("a in the file: %q", inFile)
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileHas(t, f.h.Path()); got["a"] != "1" || got["b"] != "1" {
		t.Fatalf("file after close: %v", got)
	}
}

// A failed write keeps its values for the next flush; a value put meanwhile wins unless
// the retry rule prefers the failed one.
func TestWriteBehindRetriesAFailedWrite(t *testing.T) {
	f := newWB(t, time.Hour, nil) // flushed by hand
	db := openConcurrently(t, f.h)
	f.w.Put("keep", "5")
	f.w.Put("replace", "5")
	f.w.Put("alone", "5")
	boom := errors.New("disk on fire")
	f.hook = func([]string) error {
		f.w.Put("keep", "3")    // older than the failed value: the failed one is kept
		f.w.Put("replace", "7") // newer: it wins
		return boom
	}
	if err := f.w.Flush(db); !errors.Is(err, boom) {
		t.Fatalf("flush: %v", err)
	}
	f.hook = nil
	for k, want := range map[string]string{"keep": "5", "replace": "7", "alone": "5"} {
		if v, ok := f.w.Find(k, nil); !ok || v != want {
			t.Errorf("after the failed write, %s is %q %v, want %q", k, v, ok, want)
		}
	}
	if err := f.w.Flush(db); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Flush(db); err != nil || f.writes.Load() != 2 {
		t.Fatalf("an empty flush wrote (%d writes, %v)", f.writes.Load(), err)
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileHas(t, f.h.Path()); got["keep"] != "5" || got["replace"] != "7" || got["alone"] != "5" {
		t.Fatalf("file: %v", got)
	}
}

// Hold keeps flushes off: a value taken within it is never written back.
func TestWriteBehindHoldKeepsFlushesOff(t *testing.T) {
	f := newWB(t, time.Hour, nil)
	db := openConcurrently(t, f.h)
	var holding atomic.Bool
	f.hook = func([]string) error {
		if holding.Load() {
			t.Error("a flush wrote while Hold ran")
		}
		return nil
	}
	f.w.Put("gone", "1")
	f.w.Put("stays", "1")
	flushed := make(chan error)
	f.w.Hold(func() {
		holding.Store(true)
		go func() { flushed <- f.w.Flush(db) }()
		if v, ok := f.w.Take("gone"); !ok || v != "1" {
			t.Errorf("Take: %q %v", v, ok)
		}
		holding.Store(false)
	})
	if err := wait(t, flushed, "the flush after Hold"); err != nil {
		t.Fatal(err)
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileHas(t, f.h.Path()); len(got) != 1 || got["stays"] != "1" {
		t.Fatalf("file: %v", got)
	}
}
