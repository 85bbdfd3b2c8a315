package redisqueue_test

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/queuetest"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/redis/go-redis/v9"
)

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
	var r0, u0 time.Duration
	var g0 int64
	queuetest.Cycle(b, s, func(int64) string { return queue.NewEventID() },
		func() { r0, u0, g0 = redisCPU(b, c), selfCPU(), s.Groups() },
		func() {
			b.ReportMetric((redisCPU(b, c)-r0).Seconds()*1e6/float64(b.N), "redis-CPU-µs/op")
			b.ReportMetric((selfCPU()-u0).Seconds()*1e6/float64(b.N), "client-CPU-µs/op")
			b.ReportMetric(float64(s.Groups()-g0)/float64(b.N), "pipelines/op")
		})
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
