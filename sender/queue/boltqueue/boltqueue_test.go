package boltqueue_test

import (
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) (queue.Store, func() queue.Store) {
		path := filepath.Join(t.TempDir(), "store.db")
		h := boltdb.New(path)
		s := boltqueue.New(h, boltqueue.Options{})
		t.Cleanup(func() { _ = h.Close() })
		return s, func() queue.Store {
			_ = h.Close()
			h = boltdb.New(path)
			s = boltqueue.New(h, boltqueue.Options{})
			return s
		}
	})
}
