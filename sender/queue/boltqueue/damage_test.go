package boltqueue_test

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
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
)

// Pages overwritten while the queue is open: the sweeper meets the damage and stops (the
// process lives on); every call is then an error that says the queue is unavailable (503
// to publishers and async senders), reads and the batched writes alike.
func TestDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	h := boltdb.New(path)
	s := boltqueue.New(h, boltqueue.Options{})
	for i := 0; i < 200; i++ {
		ev := queue.Event{ID: fmt.Sprintf("ev-%d", i), Type: "deal.won", Body: []byte(`{"deal":7}`)}
		if _, err := s.Enqueue(ctx, ev, []string{"partner"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.Close()

	h = boltdb.New(path)
	defer h.Close()
	s = boltqueue.New(h, boltqueue.Options{SweepInterval: 20 * time.Millisecond})
	if _, err := h.DB(); err != nil {
		t.Fatal(err)
	}
	bolttest.OverwritePages(t, path, 5)
	testwait.UntilNil(t, 30*time.Second, func() error {
		if h.Damage() == nil || h.Tasks() != 0 {
			return fmt.Errorf("damage %v, %d tasks running", h.Damage(), h.Tasks())
		}
		return nil
	}, "the damage known and the tasks stopped")
	if _, err := s.Lease(ctx, "partner", 10, time.Now(), time.Minute); !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("lease: %v", err)
	}
	ev := queue.Event{ID: "ev-new", Type: "deal.won", Body: []byte(`{}`)}
	if _, err := s.Enqueue(ctx, ev, []string{"partner"}); !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("enqueue: %v", err)
	}
}

// The first call to meet the damage is a write through bbolt's Batch: an error that says
// the queue is unavailable, not a panic in bbolt's batch goroutine.
func TestDamagedFileEnqueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	h := boltdb.New(path)
	s := boltqueue.New(h, boltqueue.Options{SweepInterval: time.Hour})
	defer h.Close()
	for i := 0; i < 200; i++ {
		ev := queue.Event{ID: fmt.Sprintf("ev-%d", i), Type: "deal.won", Body: []byte(`{"deal":7}`)}
		if _, err := s.Enqueue(ctx, ev, []string{"partner"}); err != nil {
			t.Fatal(err)
		}
	}
	bolttest.OverwritePages(t, path, 6)
	ev := queue.Event{ID: "ev-new", Type: "deal.won", Body: []byte(`{}`)}
	_, err := s.Enqueue(ctx, ev, []string{"partner"})
	if !errors.Is(err, queue.ErrUnavailable) || !errors.Is(err, boltdb.ErrDamaged) {
		t.Fatalf("enqueue onto damaged pages: %v", err)
	}
}
