package boltdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	bolt "go.etcd.io/bbolt"
)

// holdCommit starts a Batch whose function waits for release inside the commit, and
// returns once it is running: writers that arrive meanwhile wait for the next commit.
func holdCommit(t *testing.T, db *DB) (release func(), done <-chan error) {
	t.Helper()
	running, gate, out := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		out <- db.Batch(func(tx *bolt.Tx) error {
			once.Do(func() { close(running) })
			<-gate
			return tx.Bucket([]byte("b")).Put([]byte("held"), []byte("1"))
		})
	}()
	wait(t, running, "the held commit to start")
	return func() { close(gate) }, out
}

func waiting(db *DB) int { return db.g.Waiting() }

// Writers that arrive while a commit runs go together into the next one: 50 writers, two
// commits, every write in the file.
func TestBatchGroupsTheWritersWaiting(t *testing.T) {
	_, db := openStore(t)
	before := db.Commits()
	release, held := holdCommit(t, db)
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			errs <- db.Batch(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "w-%02d", i), []byte("1"))
			})
		}()
	}
	testwait.Until(t, 10*time.Second, func() bool { return waiting(db) == 50 }, "50 writers waiting")
	release()
	if err := wait(t, held, "the held commit"); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := wait(t, errs, "a writer"); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Commits() - before; n != 2 {
		t.Fatalf("51 writers took %d commits, want 2", n)
	}
	err := db.View(func(tx *bolt.Tx) error {
		for i := range 50 {
			if tx.Bucket([]byte("b")).Get(fmt.Appendf(nil, "w-%02d", i)) == nil {
				return fmt.Errorf("w-%02d is missing", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A function that fails in a group gets its own error, its writes are not kept, and the
// rest of the group commits without it; a panic in one is its caller's error alone.
func TestBatchFailingWriterRunsAlone(t *testing.T) {
	h, db := openStore(t)
	release, held := holdCommit(t, db)
	errBad := errors.New("bad write")
	put := func(k string, then error) <-chan error {
		out := make(chan error, 1)
		go func() {
			out <- db.Batch(func(tx *bolt.Tx) error {
				if err := tx.Bucket([]byte("b")).Put([]byte(k), []byte("1")); err != nil {
					return err
				}
				return then
			})
		}()
		return out
	}
	good1 := put("good-1", nil)
	testwait.Until(t, 10*time.Second, func() bool { return waiting(db) == 1 }, "the first writer waiting")
	bad := put("bad", errBad)
	testwait.Until(t, 10*time.Second, func() bool { return waiting(db) == 2 }, "the failing writer waiting")
	good2 := put("good-2", nil)
	testwait.Until(t, 10*time.Second, func() bool { return waiting(db) == 3 }, "three writers waiting")
	release()
	if err := wait(t, held, "the held commit"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, bad, "the failing writer"); !errors.Is(err, errBad) {
		t.Fatalf("the failing writer got %v", err)
	}
	for _, c := range []<-chan error{good1, good2} {
		if err := wait(t, c, "a good writer"); err != nil {
			t.Fatal(err)
		}
	}
	kept := keysIn(t, h, "good-1", "good-2", "bad", "held")
	if !kept["good-1"] || !kept["good-2"] || !kept["held"] || kept["bad"] {
		t.Fatalf("in the file: %v", kept)
	}
}

func keysIn(t *testing.T, h *Handle, keys ...string) map[string]bool {
	t.Helper()
	db, err := h.DB()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	_ = db.View(func(tx *bolt.Tx) error {
		for _, k := range keys {
			got[k] = tx.Bucket([]byte("b")).Get([]byte(k)) != nil
		}
		return nil
	})
	return got
}

// A damaged page met while a group commits (rebalancing after deletes reads the sibling
// of the page the deletes emptied) is a damage error for the group's callers, not a crash:
// the commit runs in a caller's goroutine, under the guard.
func TestBatchDamageMetWhileCommittingIsAnError(t *testing.T) {
	path := storeFile(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	pageOf := func(key string) int64 {
		for p := int64(2); p*ps < int64(len(raw)); p++ {
			if bytes.Contains(raw[p*ps:(p+1)*ps], []byte(key)) {
				return p
			}
		}
		t.Fatalf("%s is on no page", key)
		return 0
	}
	// The page holding key-01000, its keys, and the page before it (its left sibling).
	p := pageOf("key-01000")
	var keys []string
	first := 1000
	for i := 1000; i >= 0 && pageOf(fmt.Sprintf("key-%05d", i)) == p; i-- {
		first = i
	}
	for i := first; i < 2000 && pageOf(fmt.Sprintf("key-%05d", i)) == p; i++ {
		keys = append(keys, fmt.Sprintf("key-%05d", i))
	}
	sibling := pageOf(fmt.Sprintf("key-%05d", first-1))
	if sibling == p || len(keys) < 3 {
		t.Fatalf("page layout: page %d holds %d keys, sibling %d", p, len(keys), sibling)
	}
	h := New(path)
	db, err := h.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	overwrite(t, path, sibling*ps, ps, 7)
	err = db.Batch(func(tx *bolt.Tx) error {
		for _, k := range keys[1:] { // the page keeps one key: it is merged with its sibling
			if err := tx.Bucket([]byte("b")).Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	var de *DamageError
	if !errors.As(err, &de) || de.Op != "writing" {
		t.Fatalf("a commit that meets a damaged page: %v", err)
	}
	if h.Damage() == nil {
		t.Fatal("the file is not marked damaged")
	}
}

// openStore opens a handle on a new store file (storeFile's), closed when the test ends.
func openStore(t *testing.T) (*Handle, *DB) {
	t.Helper()
	h := New(storeFile(t))
	t.Cleanup(func() { _ = h.Close() })
	db, err := h.DB()
	if err != nil {
		t.Fatal(err)
	}
	return h, db
}
