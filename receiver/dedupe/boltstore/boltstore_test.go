package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/boltstore"
	"github.com/hookgate/hookgate/receiver/dedupe/dedupetest"
	bolt "go.etcd.io/bbolt"
)

type opened struct {
	*boltstore.Store
	h *boltdb.Handle
}

func open(t *testing.T, path string) opened {
	h := boltdb.New(path)
	s := boltstore.New(h, boltstore.Options{SweepInterval: 50 * time.Millisecond})
	t.Cleanup(func() { h.Close() })
	return opened{s, h}
}

func TestConformance(t *testing.T) {
	dedupetest.Run(t, func(t *testing.T) dedupetest.Fixture {
		o := open(t, filepath.Join(t.TempDir(), "store.db"))
		return dedupetest.Fixture{Store: o, Reopen: func() dedupe.Store {
			o.h.Close()
			return open(t, o.h.Path())
		}}
	})
}

func TestSweepDeletesExpiredMarks(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := o.Claim(ctx, k, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := o.Commit(ctx, k, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	testwait.UntilNil(t, 30*time.Second, func() error {
		db, _ := o.h.DB()
		n := 0
		_ = db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket([]byte("dedupe")).Stats().KeyN + tx.Bucket([]byte("dedupe_by_expiry")).Stats().KeyN
			return nil
		})
		if n != 0 {
			return fmt.Errorf("%d expired records still in the file", n)
		}
		return nil
	}, "the sweep to remove the expired records")
}

func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	first := open(t, path)
	if _, err := first.h.DB(); err != nil {
		t.Fatal(err)
	}
	h2 := boltdb.New(path)
	second := boltstore.New(h2, boltstore.Options{})
	defer h2.Close()
	_, _, err := second.Claim(context.Background(), "k", time.Minute)
	if err == nil || !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("claim on a locked file: err = %v, want ErrUnavailable", err)
	}
}

func BenchmarkClaimCommit(b *testing.B) {
	h := boltdb.New(filepath.Join(b.TempDir(), "store.db"))
	s := boltstore.New(h, boltstore.Options{})
	defer func() { h.Close() }()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16) // 32 goroutines on 2 cores: the benchmark's 32 connections
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := "scope:" + strconv.FormatInt(seq.Add(1), 10)
			_, _, _ = s.Claim(ctx, k, time.Minute)
			_ = s.Commit(ctx, k, time.Hour)
		}
	})
}
