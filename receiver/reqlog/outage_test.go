package reqlog_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/receiver/reqlog/reqlogtest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// With its Redis server stopped, the log's reads are store-unavailable errors (the admin
// API answers 503, not 500), its writes are dropped without blocking the request path,
// and it serves again once the server is back.
func TestRedisOutageIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	ctx := context.Background()
	e := reqlogtest.Entry("r", 1, "accepted", 200)
	l.Add(e)
	reqlogtest.Written(t, l, e)

	srv.Stop()
	_, listErr := l.List(ctx, "r", reqlog.Filter{})
	_, getErr := l.Get(ctx, "r", e.ID)
	for op, err := range map[string]error{"List": listErr, "Get": getErr} {
		if !errors.Is(err, storeerr.ErrUnavailable) {
			t.Errorf("%s with Redis stopped: %v, want storeerr.ErrUnavailable", op, err)
		}
		if !errors.Is(err, queue.ErrUnavailable) { // what the admin API's storeErr tests for a 503
			t.Errorf("%s with Redis stopped: %v is not queue.ErrUnavailable", op, err)
		}
		if errors.Is(err, reqlog.ErrNotFound) {
			t.Errorf("%s with Redis stopped: %v reads as not found", op, err)
		}
		if err != nil && !strings.Contains(err.Error(), "request log store unavailable") {
			t.Errorf("%s with Redis stopped: %q does not say which store", op, err)
		}
	}
	for i := range 5000 { // more than the writer's queue holds: the rest are dropped
		l.Add(reqlogtest.Entry("r", 100+i, "accepted", 200))
	}

	srv.Restart() // no persistence: the log starts empty
	back := reqlogtest.Entry("r", 2, "accepted", 200)
	testwait.Until(t, 30*time.Second, func() bool {
		l.Add(back) // an entry added while the writer still met the outage is dropped
		recs, err := l.List(ctx, "r", reqlog.Filter{Limit: 1})
		return err == nil && len(recs) == 1 && recs[0].ID == back.ID
	}, "the log to take records again after the restart")
	if _, err := l.Get(ctx, "r", e.ID); err != reqlog.ErrNotFound {
		t.Fatalf("Get of a record the restart lost: %v, want ErrNotFound", err)
	}
}

// The writer calls its script by SHA (not EVAL, which resends and rehashes the text with
// every entry) and loads it again when the server has forgotten it.
func TestRedisWriterCallsItsScriptBySHA(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	ctx := context.Background()
	first := reqlogtest.Entry("r", 1, "accepted", 200)
	l.Add(first)
	reqlogtest.Written(t, l, first)
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	second := reqlogtest.Entry("r", 2, "accepted", 200)
	l.Add(second)
	reqlogtest.Written(t, l, second)
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, "cmdstat_eval:") || !strings.Contains(stats, "cmdstat_evalsha:") {
		t.Fatalf("the writer's commands:\n%s", stats)
	}
}

// A burst is written in one script call per route and batch, not one per record, and the
// list still holds the newest records, newest first, up to its limit, with its byte count
// equal to what the list holds.
func TestRedisWriterBatchesPerRoute(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	ctx := context.Background()
	l.SetLimit("a", 50)
	l.SetLimit("b", 500)
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 400
	var lastA, lastB *reqlog.Entry
	for i := range n {
		lastA, lastB = reqlogtest.Entry("a", i, "accepted", 200), reqlogtest.Entry("b", i, "accepted", 200)
		l.Add(lastA)
		l.Add(lastB)
	}
	reqlogtest.Written(t, l, lastA, lastB)
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, line := range strings.Split(stats, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
			calls, _ = strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		}
	}
	if calls == 0 || calls > n/2 {
		t.Fatalf("%d script calls for %d records", calls, 2*n)
	}
	for route, limit := range map[string]int{"a": 50, "b": 400} {
		recs, err := l.List(ctx, route, reqlog.Filter{Limit: 1000})
		if err != nil || len(recs) != limit {
			t.Fatalf("route %s lists %d records (%v), want %d", route, len(recs), err, limit)
		}
		for i, r := range recs {
			if want := fmt.Sprintf("evt-%d", n-1-i); r.EventID != want {
				t.Fatalf("route %s record %d is %s, want %s (newest first)", route, i, r.EventID, want)
			}
		}
		raw, _ := c.LRange(ctx, "hg:rl:{"+route+"}", 0, -1).Result()
		held := 0
		for _, s := range raw {
			held += len(s)
		}
		if got, _ := c.Get(ctx, "hg:rl:{"+route+"}:bytes").Int(); got != held {
			t.Fatalf("route %s counts %d bytes, holds %d", route, got, held)
		}
	}
	t.Logf("%d records in %d script calls", 2*n, calls)
}
