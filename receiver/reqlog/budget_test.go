package reqlog_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/receiver/reqlog/reqlogtest"
)

// The memory log's budget drops the oldest records first across routes (the suite checks
// the budget holds; reqlogtest's BudgetHolds).
func TestMemoryBudget(t *testing.T) {
	l := reqlog.NewMemory()
	reqlogtest.BudgetBurst(t, l)
	// Oldest first across routes: route-00's burst came first, so it is gone.
	if recs, _ := l.List(context.Background(), "route-00", reqlog.Filter{}); len(recs) != 0 {
		t.Fatalf("route-00 still holds %d records: the oldest were not dropped first", len(recs))
	}
}

// What Redis itself holds for the log under its budget, as it counts it.
func TestRedisBudget(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	reqlogtest.BudgetBurst(t, l)
	var used int64
	for r := range 20 {
		n, _ := c.MemoryUsage(context.Background(), fmt.Sprintf("hg:rl:{route-%02d}", r)).Result()
		used += n
	}
	t.Logf("Redis holds %d bytes in the log's lists", used)
	if used > 3<<19 { // the budget (1 MB of kept bytes) plus the JSON around them
		t.Fatalf("the log's lists take %d bytes of Redis memory for a budget of 1 MB", used)
	}
}

// The worst case with the defaults: routes × 200 requests, each with a body cut at 16 KB
// and 4 KB of headers, is bounded by the default budget, not by the number of routes.
func TestMemoryWorstCaseHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	l := reqlog.NewMemory()
	const routes = 25
	before := heap()
	for r := range routes {
		route := fmt.Sprintf("route-%02d", r)
		l.SetLimit(route, reqlog.DefaultLimit)
		for i := range reqlog.DefaultLimit {
			l.Add(reqlogtest.BigEntry(route, i))
		}
	}
	grew := heap() - before
	t.Logf("%d routes × %d requests of 16 KB bodies and 4 KB headers: the heap grew by %.1f MB (budget %d MB)",
		routes, reqlog.DefaultLimit, float64(grew)/(1<<20), reqlog.DefaultMaxBytes>>20)
	if grew > reqlog.DefaultMaxBytes*5/4 {
		t.Fatalf("the heap grew by %.1f MB, over the default budget of %d MB", float64(grew)/(1<<20), reqlog.DefaultMaxBytes>>20)
	}
	runtime.KeepAlive(l)
}
