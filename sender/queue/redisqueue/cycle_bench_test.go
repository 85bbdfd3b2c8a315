package redisqueue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/redis/go-redis/v9"
)

// cycleBody is a 1 KB webhook body, as an async route queues it.
var cycleBody = []byte(`{"Id":"` + fmt.Sprintf("%0990d", 7) + `"}`)

// BenchmarkCycle measures what an async webhook costs the Redis queue end to end, as the
// embedded store's BenchmarkCycle does: 32 concurrent writers each enqueue an event while
// one worker leases up to 64 due deliveries and finishes them delivered. ns/op is per
// event, from its enqueue to its finish; redis-CPU-µs/op is the server's CPU per event
// (INFO's used_cpu_user and used_cpu_sys), client-CPU-µs/op this process's, and
// pipelines/op how many grouped enqueue pipelines an event took. Redis and the benchmark
// share the machine's cores, as Caddy and Redis do in bench/bench.sh.
//
//	go test ./sender/queue/redisqueue -run X -bench Cycle -benchtime 20000x
func BenchmarkCycle(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	s := redisqueue.New(c, "hg:", redisqueue.Options{})
	defer s.Close()
	ctx := context.Background()
	var finished atomic.Int64
	stop := make(chan struct{})
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
				case <-stop:
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
	b.SetParallelism(16) // 32 writers on 2 cores
	b.ReportAllocs()
	b.SetBytes(int64(len(cycleBody)))
	r0, u0, g0 := redisCPU(b, c), selfCPU(), s.Groups()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Enqueue(ctx, queue.Event{ID: queue.NewEventID(), Type: "webhook", Body: cycleBody, Unique: true}, []string{"sink"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for finished.Load() < int64(b.N) && !b.Failed() {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric((redisCPU(b, c)-r0).Seconds()*1e6/float64(b.N), "redis-CPU-µs/op")
	b.ReportMetric((selfCPU()-u0).Seconds()*1e6/float64(b.N), "client-CPU-µs/op")
	b.ReportMetric(float64(s.Groups()-g0)/float64(b.N), "pipelines/op")
	close(stop)
	wg.Wait()
}

// redisCPU is the server's CPU time so far (user and system).
func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			total += time.Duration(f * float64(time.Second))
		}
	}
	return total
}

// selfCPU is this process's CPU time so far (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
