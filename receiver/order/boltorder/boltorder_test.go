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
	ordertest.Run(t, func(t *testing.T) order.Store {
		h := boltdb.New(filepath.Join(t.TempDir(), "store.db"))
		t.Cleanup(func() { _ = h.Close() })
		return boltorder.New(h)
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
