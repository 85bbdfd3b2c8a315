package reqlog_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/receiver/reqlog/reqlogtest"
	"github.com/redis/go-redis/v9"
)

func TestMemory(t *testing.T) {
	reqlogtest.Run(t, func(t *testing.T) reqlogtest.Fixture { return reqlogtest.Fixture{Store: reqlog.NewMemory()} })
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	reqlogtest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	}))
}

func TestRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	reqlogtest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return cl.Client(t)
	}))
}

// fixtures makes each case's logs on clients from connect, under a prefix of the case's
// own: a reopened log and one beside it are on new clients, as in another process.
func fixtures(connect func(t *testing.T) redis.UniversalClient) reqlogtest.Factory {
	return func(t *testing.T) reqlogtest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() reqlog.Log {
			l := reqlog.NewRedis(connect(t), prefix)
			t.Cleanup(l.Close)
			return l
		}
		return reqlogtest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
}

// BenchmarkAdd is what the request path pays to record one request (without a body copy).
func BenchmarkAdd(b *testing.B) {
	l := reqlog.NewMemory()
	h := http.Header{"Authorization": {"x"}, "Content-Type": {"application/json"}}
	red := reqlog.NewRedactor(nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		l.Add(&reqlog.Entry{Record: reqlog.Record{ID: reqlog.NewID(now), Route: "r", Time: now, Outcome: "accepted", Status: 200},
			RawHeader: h, Path: "/in", Redact: red})
	}
}
