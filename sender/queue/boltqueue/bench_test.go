package boltqueue_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
)

// BenchmarkEnqueue measures durable enqueues from 64 concurrent publishers.
func BenchmarkEnqueue(b *testing.B) {
	h := boltdb.New(filepath.Join(b.TempDir(), "q.db"))
	s := boltqueue.New(h, boltqueue.Options{})
	defer func() { _ = h.Close() }()
	body := []byte(`{"type":"invoice.paid","data":{"invoice":"INV-0001","amount":1234.56}}`)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "evt_" + strconv.FormatInt(n.Add(1), 10)
			if _, err := s.Enqueue(context.Background(), queue.Event{ID: id, Type: "t", Body: body}, []string{"sink"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
