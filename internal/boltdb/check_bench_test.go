package boltdb

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// writeLargeStore fills path with about size bytes of the records Hookgate's stores write:
// dedupe marks (route:event-id -> expiry) with their expiry index, and queue deliveries
// (~1 KB records keyed by delivery id, with their due index), random ids as in production.
func writeLargeStore(tb testing.TB, path string, size int64) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	id := func() string {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	body := make([]byte, 900)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	exp := time.Now().Add(24 * time.Hour).UnixNano()
	for n := 0; ; n++ {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= size {
			return
		}
		keys := make([]string, 20000)
		for i := range keys {
			keys[i] = id()
		}
		sort.Strings(keys)
		err := db.Update(func(tx *bolt.Tx) error {
			marks, _ := tx.CreateBucketIfNotExists([]byte("dedupe"))
			byExp, _ := tx.CreateBucketIfNotExists([]byte("dedupe_by_expiry"))
			dels, _ := tx.CreateBucketIfNotExists([]byte("q_deliveries"))
			due, _ := tx.CreateBucketIfNotExists([]byte("q_due"))
			var v [8]byte
			for i, k := range keys {
				e := exp + int64(n*len(keys)+i)
				binary.BigEndian.PutUint64(v[:], uint64(e))
				if i%2 == 0 {
					if err := marks.Put([]byte("webhook:"+k), v[:]); err != nil {
						return err
					}
					if err := byExp.Put(append(v[:], "webhook:"+k...), nil); err != nil {
						return err
					}
					continue
				}
				rec := fmt.Sprintf(`{"id":%q,"endpoint":"partner","event":{"type":"deal.won","body":%q}}`, k, body)
				if err := dels.Put([]byte("partner:"+k), []byte(rec)); err != nil {
					return err
				}
				if err := due.Put(append(append([]byte("partner\x00"), v[:]...), k...), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkOpenCheck1GB times what opening a ~1 GB store file costs: the pre-open check
// of the meta and freelist pages and the prefetch, bbolt's open, the page walk and
// Tx.Check. It writes the
// file first (half a minute or so), so it runs only with HOOKGATE_BENCH_1GB=1; with
// HOOKGATE_BENCH_COLD=1 the file is evicted from the page cache before each open (as after
// a reboot). bench/storecheck.sh runs both.
//
//	HOOKGATE_BENCH_1GB=1 go test ./internal/boltdb -run '^$' -bench OpenCheck1GB -benchtime 3x
func BenchmarkOpenCheck1GB(b *testing.B) {
	if os.Getenv("HOOKGATE_BENCH_1GB") == "" {
		b.Skip("set HOOKGATE_BENCH_1GB=1 to write a 1 GB store file and time its check")
	}
	dir := os.Getenv("HOOKGATE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, "large.db")
	if _, err := os.Stat(path); err != nil {
		t0 := time.Now()
		writeLargeStore(b, path, 1<<30)
		b.Logf("wrote %s in %v", path, time.Since(t0).Round(time.Second))
	}
	fi, _ := os.Stat(path)
	var pre, open, walk, check time.Duration
	var keys int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if os.Getenv("HOOKGATE_BENCH_COLD") != "" {
			b.StopTimer()
			evict(b, path)
			b.StartTimer()
		}
		t0 := time.Now()
		if err := checkFile(path); err != nil {
			b.Fatal(err)
		}
		prefetch(path)
		t1 := time.Now()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		base := db.Info().Data
		err = db.View(func(tx *bolt.Tx) error {
			w := &walker{lo: base, hi: base + uintptr(tx.Size())}
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error { return w.child(name, bk) })
		})
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		err = db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				return e
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		_ = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error { keys += bk.Stats().KeyN; return nil })
		})
		_ = db.Close()
		pre, open, walk, check = pre+t1.Sub(t0), open+t2.Sub(t1), walk+t3.Sub(t2), check+t4.Sub(t3)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(fi.Size())/(1<<20), "MB")
	b.ReportMetric(float64(keys/b.N), "keys")
	b.ReportMetric((pre/n).Seconds()*1000, "ms-precheck+prefetch")
	b.ReportMetric((open/n).Seconds()*1000, "ms-open")
	b.ReportMetric((walk/n).Seconds()*1000, "ms-walk")
	b.ReportMetric((check/n).Seconds()*1000, "ms-txcheck")
}

// evict drops path's pages from the page cache (they are clean: nothing is writing).
func evict(tb testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		tb.Fatal(err)
	}
}
