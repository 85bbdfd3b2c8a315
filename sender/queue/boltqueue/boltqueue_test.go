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
	queuetest.Run(t, func(t *testing.T) queuetest.Fixture {
		path := filepath.Join(t.TempDir(), "store.db")
		h := boltdb.New(path)
		t.Cleanup(func() { _ = h.Close() })
		return queuetest.Fixture{Store: boltqueue.New(h, boltqueue.Options{}), Reopen: func() queue.Store {
			_ = h.Close()
			h = boltdb.New(path)
			return boltqueue.New(h, boltqueue.Options{})
		}}
	})
}
