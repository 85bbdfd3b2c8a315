package boltsubs_test

import (
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
	"github.com/hookgate/hookgate/sender/subscription/substest"
)

func TestConformance(t *testing.T) {
	substest.Run(t, func(t *testing.T) substest.Fixture {
		path := filepath.Join(t.TempDir(), "store.db")
		h := boltdb.New(path)
		t.Cleanup(func() { _ = h.Close() })
		return substest.Fixture{Store: boltsubs.New(h), Reopen: func() subscription.Store {
			_ = h.Close()
			h = boltdb.New(path)
			return boltsubs.New(h)
		}}
	})
}
