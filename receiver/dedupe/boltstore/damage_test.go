package boltstore_test

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
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/boltstore"
)

// waitStopped waits for the handle to know of the damage and its tasks to have returned.
func waitStopped(t *testing.T, h *boltdb.Handle) {
	t.Helper()
	testwait.UntilNil(t, 30*time.Second, func() error {
		if h.Damage() == nil || h.Tasks() != 0 {
			return fmt.Errorf("damage %v, %d tasks running", h.Damage(), h.Tasks())
		}
		return nil
	}, "the damage known and the tasks stopped")
}

// committed writes n marks and closes the store (a clean close flushes them).
func committed(t *testing.T, path string, n int) {
	t.Helper()
	h := boltdb.New(path)
	s := boltstore.New(h, boltstore.Options{})
	ctx := context.Background()
	for i := 0; i < n; i++ {
		k := "scope:" + time.Duration(i).String()
		if _, _, err := s.Claim(ctx, k, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

// Pages overwritten while the store is open: a claim that reads them is an error that
// says the store is unavailable (the receiver answers 503), and so is every later call.
func TestDamagedFileClaimIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	committed(t, path, 500)
	h := boltdb.New(path)
	s := boltstore.New(h, boltstore.Options{SweepInterval: time.Hour})
	defer h.Close()
	if _, err := h.DB(); err != nil {
		t.Fatal(err)
	}
	bolttest.OverwritePages(t, path, 1)
	_, _, err := s.Claim(context.Background(), "scope:1ns", time.Minute)
	if !errors.Is(err, dedupe.ErrUnavailable) || !errors.Is(err, boltdb.ErrDamaged) {
		t.Fatalf("claim on a damaged file: %v", err)
	}
	waitStopped(t, h)
	if err := s.Commit(context.Background(), "scope:new", time.Hour); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("commit after the damage: %v", err)
	}
}

// The background tasks meet damage on their own: the sweeper, and the flusher writing a
// mark. Each stops (and stops the others); the process lives on.
func TestDamagedFileStopsTheTasks(t *testing.T) {
	t.Run("sweeper", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		committed(t, path, 500)
		h := boltdb.New(path)
		_ = boltstore.New(h, boltstore.Options{SweepInterval: 20 * time.Millisecond})
		defer h.Close()
		if _, err := h.DB(); err != nil {
			t.Fatal(err)
		}
		bolttest.OverwritePages(t, path, 2)
		waitStopped(t, h)
	})
	t.Run("flusher", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		committed(t, path, 500)
		h := boltdb.New(path)
		s := boltstore.New(h, boltstore.Options{SweepInterval: time.Hour})
		defer h.Close()
		ctx := context.Background()
		if _, _, err := s.Claim(ctx, "scope:new", time.Minute); err != nil {
			t.Fatal(err)
		}
		bolttest.OverwritePages(t, path, 3)
		if err := s.Commit(ctx, "scope:new", time.Hour); err != nil { // in memory; the flusher writes it
			t.Fatal(err)
		}
		waitStopped(t, h)
		var de *boltdb.DamageError
		if !errors.As(h.Damage(), &de) || de.Op != "writing" {
			t.Fatalf("damage %v, want the flusher's write", h.Damage())
		}
	})
}
