package boltorder_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
	"github.com/hookgate/hookgate/receiver/order/ordertest"
)

func TestConformance(t *testing.T) {
	ordertest.Run(t, func(t *testing.T) ordertest.Fixture {
		path := filepath.Join(t.TempDir(), "store.db")
		h := boltdb.New(path)
		t.Cleanup(func() { _ = h.Close() })
		return ordertest.Fixture{Store: boltorder.New(h), Reopen: func() order.Store {
			_ = h.Close()
			h = boltdb.New(path)
			return boltorder.New(h)
		}}
	})
}

// Committed values reach the file (within a flush interval, and at a clean close).
func TestCommitsSurviveAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	h := boltdb.New(path)
	s := boltorder.New(h)
	ctx := context.Background()
	newer, _ := order.Encode(order.Time, "2025-10-01T14:05:00Z")
	older, _ := order.Encode(order.Time, "2025-10-01T14:00:00Z")
	_, tok, err := s.Claim(ctx, "row:1", newer, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "row:1", newer, tok, time.Hour); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	h = boltdb.New(path)
	t.Cleanup(func() { _ = h.Close() })
	s = boltorder.New(h)
	if v, _, _ := s.Claim(ctx, "row:1", older, time.Minute); v != order.Stale {
		t.Fatalf("after a reopen an older event is %v, want Stale", v)
	}
}

// A clear is not undone by the flush of a value committed before it, nor by a reopen.
func TestClearSurvivesAFlushAndAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	h := boltdb.New(path)
	s := boltorder.New(h)
	ctx := context.Background()
	v, _ := order.Encode(order.Time, "2262-04-11T00:00:00Z")
	for _, key := range []string{"row:1", "row:2"} {
		_, tok, err := s.Claim(ctx, key, v, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, key, v, tok, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// row:1 is cleared while still in memory, row:2 once it is in the file.
	if found, err := s.Clear(ctx, "row:1"); err != nil || !found {
		t.Fatalf("Clear before a flush: %v %v", found, err)
	}
	_ = h.Close() // flushes
	h = boltdb.New(path)
	s = boltorder.New(h)
	if found, err := s.Clear(ctx, "row:2"); err != nil || !found {
		t.Fatalf("Clear from the file: %v %v", found, err)
	}
	_ = h.Close()
	h = boltdb.New(path)
	t.Cleanup(func() { _ = h.Close() })
	s = boltorder.New(h)
	for _, key := range []string{"row:1", "row:2"} {
		if _, found, err := s.Get(ctx, key); err != nil || found {
			t.Fatalf("%s after Clear and a reopen: %v %v", key, found, err)
		}
	}
}
