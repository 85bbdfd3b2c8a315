package boltorder_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
	bolt "go.etcd.io/bbolt"
)

// oldFile writes an order bucket the way releases before the expiry index did (key ->
// 8 bytes of expiry then the value, no other bucket): live keys expire at live, expired
// ones at dead.
func oldFile(t *testing.T, path string, live, dead time.Time, nLive, nDead int, v string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put := func(b *bolt.Bucket, key string, exp time.Time) error {
		raw := make([]byte, 8, 8+len(v))
		binary.BigEndian.PutUint64(raw, uint64(exp.UnixNano()))
		return b.Put([]byte(key), append(raw, v...))
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("order"))
		if err != nil {
			return err
		}
		// Interleaved, so every sweep chunk holds both kinds.
		for i := 0; i < max(nLive, nDead); i++ {
			if i < nLive {
				if err := put(b, fmt.Sprintf("live:%05d", i), live); err != nil {
					return err
				}
			}
			if i < nDead {
				if err := put(b, fmt.Sprintf("dead:%05d", i), dead); err != nil {
					return err
				}
			}
		}
		return b.Put([]byte("short"), []byte{1, 2}) // not a record at all
	}); err != nil {
		t.Fatal(err)
	}
}

// count returns how many records the order bucket holds, read with bbolt after close.
func count(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("order")).Stats().KeyN; return nil })
	return n
}

// A file written before the expiry index is swept: expired records (and one that is not a
// record) at the first sweep, the rest through the index it gets; over more records than
// one sweep transaction takes.
func TestSweepsAFileWrittenBeforeTheIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	now := time.Now()
	v, _ := order.Encode(order.Time, "2025-10-01T14:05:00Z")
	older, _ := order.Encode(order.Time, "2025-10-01T14:00:00Z")
	const nLive, nDead = 2500, 2600
	oldFile(t, path, now.Add(time.Hour), now.Add(-time.Hour), nLive, nDead, v)

	ctx := context.Background()
	h := boltdb.New(path)
	s := boltorder.New(h)
	if err := s.Sweep(now); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "dead:00007"); err != nil || found {
		t.Fatalf("an expired old record after the sweep: %v %v", found, err)
	}
	if got, _, err := s.Get(ctx, "live:02499"); err != nil || got.Value != v {
		t.Fatalf("a live old record after the sweep: %+v %v", got, err)
	}
	if verdict, _, _ := s.Claim(ctx, "live:00001", older, time.Minute); verdict != order.Stale {
		t.Fatalf("an older event of a live old record is %v, want Stale", verdict)
	}
	// A value committed now expires with the rest; one with a longer window stays.
	_, tok, err := s.Claim(ctx, "new:1", v, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "new:1", v, tok, 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	_ = h.Close() // flushes
	if n := count(t, path); n != nLive+1 {
		t.Fatalf("%d records after the first sweep, want the %d live ones and the new one", n, nLive)
	}

	h = boltdb.New(path)
	s = boltorder.New(h)
	if err := s.Sweep(now.Add(2 * time.Hour)); err != nil { // the old live records have expired
		t.Fatal(err)
	}
	_ = h.Close()
	if n := count(t, path); n != 1 {
		t.Fatalf("%d records after the second sweep, want only new:1", n)
	}
}

// A value rewritten with a later window gets a new index entry: the sweep of its first
// expiry keeps it, the sweep of its second deletes it; a cleared value leaves no entry.
func TestSweepFollowsRewrittenValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	h := boltdb.New(path)
	t.Cleanup(func() { _ = h.Close() })
	s := boltorder.New(h)
	ctx := context.Background()
	commit := func(key, raw string, window time.Duration) {
		t.Helper()
		v, _ := order.Encode(order.Time, raw)
		_, tok, err := s.Claim(ctx, key, v, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, key, v, tok, window); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() {
		t.Helper()
		_ = h.Close() // flushes
		h = boltdb.New(path)
		s = boltorder.New(h)
	}
	now := time.Now()
	commit("row:1", "2025-10-01T14:00:00Z", time.Hour)
	commit("row:2", "2025-10-01T14:00:00Z", time.Hour)
	reopen()
	commit("row:1", "2025-10-01T14:05:00Z", 3*time.Hour)
	reopen()
	if _, err := s.Clear(ctx, "row:2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(now.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(ctx, "row:1"); err != nil || !found {
		t.Fatalf("row:1 swept at its first expiry: %v %v", found, err)
	}
	if err := s.Sweep(now.Add(4 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	if n := count(t, path); n != 0 {
		t.Fatalf("%d records after the last sweep", n)
	}
}
