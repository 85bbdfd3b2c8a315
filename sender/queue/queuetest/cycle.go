package queuetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// CycleBody is a 1 KB webhook body, as an async route queues it.
var CycleBody = []byte(`{"Id":"` + fmt.Sprintf("%0990d", 7) + `"}`)

// Cycle is the body of each store's BenchmarkCycle: what an async webhook costs the queue
// end to end. 32 concurrent writers each enqueue a 1 KB event to endpoint "sink" while one
// worker, as the dispatcher's runner does, leases up to 64 due deliveries and finishes
// them delivered; ns/op is per event, from its enqueue to its finish. id(n) names the n-th
// event. start runs just before the clock starts and stop just after it stops, for the
// store's own metrics.
func Cycle(b *testing.B, s queue.Store, id func(n int64) string, start, stop func()) {
	ctx := context.Background()
	var finished atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the worker
		defer wg.Done()
		for {
			ds, err := s.Lease(ctx, "sink", 64, time.Now(), time.Minute)
			if err != nil {
				b.Error(err)
				return
			}
			if len(ds) == 0 {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Microsecond):
				}
				continue
			}
			res := make([]queue.Result, len(ds))
			for i, d := range ds {
				res[i] = queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}
			}
			if err := s.Finish(ctx, res); err != nil {
				b.Error(err)
				return
			}
			finished.Add(int64(len(ds)))
		}
	}()
	var n atomic.Int64
	b.SetParallelism(16) // 32 writers on 2 cores
	b.ReportAllocs()
	b.SetBytes(int64(len(CycleBody)))
	start()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := queue.Event{ID: id(n.Add(1)), Type: "webhook", Body: CycleBody, Unique: true}
			if _, err := s.Enqueue(ctx, ev, []string{"sink"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for finished.Load() < n.Load() && !b.Failed() {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	stop()
	close(done)
	wg.Wait()
}
