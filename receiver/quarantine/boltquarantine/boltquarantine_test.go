package boltquarantine_test

import (
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/quarantine/boltquarantine"
	"github.com/hookgate/hookgate/receiver/quarantine/quarantinetest"
)

func TestConformance(t *testing.T) {
	quarantinetest.Run(t, func(t *testing.T) quarantinetest.Fixture {
		path := filepath.Join(t.TempDir(), "store.db")
		h := boltdb.New(path)
		t.Cleanup(func() { h.Close() })
		return quarantinetest.Fixture{Store: boltquarantine.New(h), Reopen: func() quarantine.Store {
			h.Close()
			h2 := boltdb.New(path)
			t.Cleanup(func() { h2.Close() })
			return boltquarantine.New(h2)
		}}
	})
}
