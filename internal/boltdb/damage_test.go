package boltdb

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	bolt "go.etcd.io/bbolt"
)

// overwrite writes seeded garbage over n bytes at off (what dd from /dev/urandom does).
func overwrite(t *testing.T, path string, off int64, n int, seed uint64) {
	t.Helper()
	garbage := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(garbage, off); err != nil {
		t.Fatal(err)
	}
}

func usedPages(t *testing.T, path string) (pages, pageSize int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := readMetas(f)[0]
	return int64(m.highWater), int64(m.pageSize)
}

// Every page of a real file overwritten in turn, whole, all but its header (so bbolt's
// page id assertion passes and the garbage is in the elements), or its second half (the
// keys and values): opening it either finds the
// damage (an ErrDamaged naming the file) or, for a page bbolt does not use (a free page),
// opens a file whose every key still reads. Never a panic, never a fault: either would end
// this test binary. (bbolt's Tx.Check alone, without the walk before it, dies of a SIGSEGV
// in its own goroutine on a leaf page overwritten after its header.)
func TestOpenFindsEveryOverwrittenPage(t *testing.T) {
	src := storeFile(t)
	pages, ps := usedPages(t, src)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	found, free := 0, 0
	for _, mode := range []string{"whole", "after the header", "second half"} {
		for p := int64(2); p < pages; p++ {
			path := t.TempDir() + "/store.db"
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			off, n := p*ps, int(ps)
			switch mode {
			case "after the header":
				off, n = off+pageHeaderSize, n-pageHeaderSize
			case "second half":
				off, n = off+ps/2, n/2
			}
			overwrite(t, path, off, n, uint64(p))
			h := New(path)
			db, err := h.DB()
			if err != nil {
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
					t.Fatalf("page %d overwritten %s: %v", p, mode, err)
				}
				found++
				_ = h.Close()
				continue
			}
			// Opened: the garbage is where bbolt does not look, so every key reads back.
			free++
			keys := 0
			if err := db.View(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error { keys++; return nil })
			}); err != nil || keys != 2000 {
				t.Fatalf("page %d overwritten %s passed the check, but reading gives %d keys, %v", p, mode, keys, err)
			}
			_ = h.Close()
		}
	}
	t.Logf("%d pages in use: %d damaged copies refused, %d opened (the garbage was on a free page or in a page's unused space)", pages, found, free)
	if found == 0 {
		t.Fatal("no damage found at all")
	}
}

// A freelist page that is garbage is refused before bbolt reads it while opening.
func TestFreelistPageChecked(t *testing.T) {
	path := storeFile(t)
	f, _ := os.Open(path)
	m := readMetas(f)[0]
	if m2 := readMetas(f)[1]; m2 != nil && m2.txid > m.txid {
		m = m2
	}
	f.Close()
	if m.freelist == noFreelist {
		t.Skip("no freelist page")
	}
	overwrite(t, path, int64(m.freelist)*int64(m.pageSize), int(m.pageSize), 7)
	err := checkFile(path)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "freelist") || !strings.Contains(err.Error(), path) {
		t.Fatalf("garbage freelist page: %v", err)
	}
}

var errSvcUnavailable = errors.New("svc unavailable")

// Damage that appears after the open: the transaction that meets it returns a
// *DamageError (matching ErrDamaged and the services' Unavailable errors) instead of
// panicking; OnDamage hears of it once; the tasks stop; every later call is refused.
func TestDamageAfterOpenIsAnError(t *testing.T) {
	path := storeFile(t)
	h := New(path)
	var reported atomic.Int32
	h.OnDamage = func(error) { reported.Add(1) }
	stopped := make(chan struct{})
	h.Use(Service{Unavailable: errSvcUnavailable, Tasks: []Task{func(db *DB, stop <-chan struct{}) {
		<-stop
		// A task's last write after damage is refused, not run on the damaged file.
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("x"), []byte("y")) }); !errors.Is(err, ErrDamaged) {
			t.Errorf("a task's write after damage: %v", err)
		}
		close(stopped)
	}}})
	db, err := h.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Tasks() != 1 || h.Damage() != nil {
		t.Fatalf("tasks %d, damage %v", h.Tasks(), h.Damage())
	}
	pages, ps := usedPages(t, path)
	overwrite(t, path, 2*ps, int((pages-2)*ps), 3) // every page but the metas
	err = db.View(func(tx *bolt.Tx) error {
		_ = tx.Bucket([]byte("b")).Get([]byte("key-00001"))
		return nil
	})
	var de *DamageError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) || !errors.Is(err, errSvcUnavailable) || de.Path != path || de.Op != "reading" {
		t.Fatalf("read of a damaged page: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the task did not stop")
	}
	testwait.Until(t, 30*time.Second, func() bool { return h.Tasks() == 0 }, "the tasks to return")
	// Later calls are refused without touching bbolt, with the first error.
	calls := 0
	for _, run := range []func(func(*bolt.Tx) error) error{db.View, db.Update, db.Batch} {
		if err := run(func(*bolt.Tx) error { calls++; return nil }); err != de {
			t.Fatalf("a call after the damage: %v", err)
		}
	}
	if _, err := h.DB(); err != de {
		t.Fatalf("DB() after the damage: %v", err)
	}
	if calls != 0 || reported.Load() != 1 || h.Damage() != de {
		t.Fatalf("calls %d, reported %d, damage %v", calls, reported.Load(), h.Damage())
	}
}

// The guard adds no allocation to a transaction (the hot path runs one per webhook), with
// a closure over the caller's variables as the stores write them.
func TestGuardAllocatesNothing(t *testing.T) {
	_, db := openStore(t)
	key := []byte("key-00001")
	raw := testing.AllocsPerRun(500, func() {
		found := false
		_ = db.db.View(func(tx *bolt.Tx) error { found = len(tx.Bucket([]byte("b")).Get(key)) > 0; return nil })
		_ = found
	})
	guarded := testing.AllocsPerRun(500, func() {
		found := false
		_ = db.View(func(tx *bolt.Tx) error { found = len(tx.Bucket([]byte("b")).Get(key)) > 0; return nil })
		_ = found
	})
	if guarded > raw {
		t.Fatalf("a guarded View allocates %.1f times, bbolt's own %.1f", guarded, raw)
	}
}

func BenchmarkView(b *testing.B) {
	h := New(storeFile(&testing.T{}))
	db, err := h.DB()
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	fn := func(tx *bolt.Tx) error { _ = tx.Bucket([]byte("b")).Get([]byte("key-00001")); return nil }
	b.Run("bbolt", func(b *testing.B) {
		for b.Loop() {
			_ = db.db.View(fn)
		}
	})
	b.Run("guarded", func(b *testing.B) {
		for b.Loop() {
			_ = db.View(fn)
		}
	})
}
