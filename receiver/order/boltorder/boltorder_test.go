package boltorder_test

import (
	"path/filepath"
	"testing"

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
