package boltorder_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/boltdb/bolttest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
)

// Pages overwritten while the guard's store is open: the flusher meets the damage and
// stops (the process lives on), and a claim that reads the file is an error that says the
// store is unavailable (the guard answers 503).
func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	h := boltdb.New(path)
	s := boltorder.New(h)
	v, _ := order.Encode(order.Time, "2025-10-01T14:05:00Z")
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("row:%d", i)
		_, tok, err := s.Claim(ctx, k, v, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, k, v, tok, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.Close()

	h = boltdb.New(path)
	defer h.Close()
	s = boltorder.New(h)
	_, tok, err := s.Claim(ctx, "row:new", v, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bolttest.OverwritePages(t, path, 4)
	if err := s.Commit(ctx, "row:new", v, tok, time.Hour); err != nil { // the flusher writes it
		t.Fatal(err)
	}
	testwait.UntilNil(t, 30*time.Second, func() error {
		if h.Damage() == nil || h.Tasks() != 0 {
			return fmt.Errorf("damage %v, %d tasks running", h.Damage(), h.Tasks())
		}
		return nil
	}, "the damage known and the tasks stopped")
	if _, _, err := s.Claim(ctx, "row:7", v, time.Minute); !errors.Is(err, order.ErrUnavailable) || !errors.Is(err, boltdb.ErrDamaged) {
		t.Fatalf("claim on the damaged file: %v", err)
	}
	if err := s.Sweep(time.Now()); !errors.Is(err, order.ErrUnavailable) {
		t.Fatalf("sweep on the damaged file: %v", err)
	}
}
