package boltsubs_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/boltdb/bolttest"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
)

// Pages overwritten while the store is open: reads and the batched writes are errors that
// say the store is unavailable (503 from the subscriptions API), never a panic.
func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	h := boltdb.New(path)
	defer h.Close()
	s := boltsubs.New(h)
	for i := 0; i < 100; i++ {
		sub := subscription.Subscription{ID: fmt.Sprintf("sub_%d", i), URL: "https://partner.example/hook", Version: 1}
		if err := s.Put(ctx, sub, 0); err != nil {
			t.Fatal(err)
		}
	}
	bolttest.OverwritePages(t, path, 7)
	if err := s.Put(ctx, subscription.Subscription{ID: "sub_new", Version: 1}, 0); !errors.Is(err, subscription.ErrUnavailable) || !errors.Is(err, boltdb.ErrDamaged) {
		t.Fatalf("put onto damaged pages: %v", err)
	}
	if _, err := s.All(ctx); !errors.Is(err, subscription.ErrUnavailable) {
		t.Fatalf("all: %v", err)
	}
	if _, err := s.Get(ctx, "sub_1"); !errors.Is(err, subscription.ErrUnavailable) {
		t.Fatalf("get: %v", err)
	}
	if _, err := s.Delete(ctx, "sub_1"); !errors.Is(err, subscription.ErrUnavailable) {
		t.Fatalf("delete: %v", err)
	}
}
