package reqlog_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/reqlog"
)

// bigEntry is an unauthenticated request as a hostile client sends it: a body cut at the
// default 16 KB and 4 KB of headers.
func bigEntry(route string, i int) *reqlog.Entry {
	now := time.Now()
	return &reqlog.Entry{
		Record: reqlog.Record{ID: reqlog.NewID(now), Route: route, Time: now, Outcome: "unauthorized", Status: 401,
			EventID: fmt.Sprintf("%s-%d", route, i), BodySize: 60 << 10, BodyCut: true},
		RawHeader: http.Header{"Content-Type": {"application/json"}, "X-Filler": {strings.Repeat("h", 4<<10)}},
		Path:      "/in", Redact: reqlog.NewRedactor(nil, nil),
		RawBody: bytes.Repeat([]byte("b"), reqlog.DefaultBody),
	}
}

// budgetConformance: with a byte budget, the log across every route holds no more than it
// (as the records are listed), and drops the oldest first, whichever route they are in.
func budgetConformance(t *testing.T, l reqlog.Log, settle func(route string, n int)) {
	ctx := context.Background()
	const budget = 1 << 20
	l.SetMaxBytes(budget)
	routes := make([]string, 20)
	for r := range routes {
		routes[r] = fmt.Sprintf("route-%02d", r)
		l.SetLimit(routes[r], reqlog.DefaultLimit)
	}
	// Each route in turn gets a burst of 50: route-00's are the oldest.
	for _, route := range routes {
		for i := range 50 {
			l.Add(bigEntry(route, i))
		}
	}
	settle(routes[len(routes)-1], 1)
	total, kept := 0, map[string]int{}
	for _, route := range routes {
		recs, err := l.List(ctx, route, reqlog.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		kept[route] = len(recs)
		for _, rec := range recs {
			total += len(rec.Body) + len(rec.Header.Get("X-Filler"))
		}
	}
	t.Logf("held %d bytes of bodies and headers for a budget of %d; records per route: %v", total, budget, kept)
	if total > budget {
		t.Fatalf("the log holds %d bytes of bodies and headers, over its budget of %d", total, budget)
	}
	if last := routes[len(routes)-1]; kept[last] == 0 {
		t.Fatalf("the newest route kept nothing: %v", kept)
	}
	if newest, _ := l.List(ctx, routes[len(routes)-1], reqlog.Filter{Limit: 1}); len(newest) != 1 || newest[0].EventID != routes[len(routes)-1]+"-49" {
		t.Fatalf("the newest record is gone: %+v", newest)
	}
}

func TestMemoryBudget(t *testing.T) {
	l := reqlog.NewMemory()
	budgetConformance(t, l, func(string, int) {})
	// Oldest first across routes: route-00's burst came first, so it is gone.
	if recs, _ := l.List(context.Background(), "route-00", reqlog.Filter{}); len(recs) != 0 {
		t.Fatalf("route-00 still holds %d records: the oldest were not dropped first", len(recs))
	}
}

func TestRedisBudget(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	budgetConformance(t, l, func(route string, n int) {
		testwait.Until(t, 30*time.Second, func() bool {
			recs, _ := l.List(context.Background(), route, reqlog.Filter{Limit: 1})
			return len(recs) == 1 && strings.HasSuffix(recs[0].EventID, "-49")
		}, "the writer to write route "+route)
	})
	// What Redis itself holds for the log, as it counts it.
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
			l.Add(bigEntry(route, i))
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
