package reqlog_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/reqlog"
)

func entry(route string, i int, outcome string, status int) *reqlog.Entry {
	now := time.Now()
	return &reqlog.Entry{
		Record: reqlog.Record{ID: reqlog.NewID(now), Route: route, Time: now, Outcome: outcome, Status: status,
			EventID: fmt.Sprintf("evt-%d", i), Replayable: status < 300},
		RawHeader: http.Header{"Authorization": {"Bearer s3cret"}, "X-Key": {"k3y"}, "Content-Type": {"application/json"}},
		Path:      "/in", RawQuery: "key=qs3cret&x=1",
		Redact:  reqlog.NewRedactor([]string{"X-Key"}, []string{"key"}),
		RawBody: []byte(fmt.Sprintf(`{"n":%d}`, i)),
	}
}

func conformance(t *testing.T, l reqlog.Log, settle func()) {
	ctx := context.Background()
	l.SetLimit("r", 3)
	for i := range 5 {
		outcome, status := "accepted", 200
		if i == 3 {
			outcome, status = "unauthorized", 401
		}
		l.Add(entry("r", i, outcome, status))
	}
	l.Add(entry("other", 9, "accepted", 200))
	bin := entry("bin", 0, "accepted", 200)
	bin.RawBody = []byte{0xff, 0x00, 'x'}
	l.Add(bin)
	settle()
	recs, err := l.List(ctx, "r", reqlog.Filter{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("List = %d records, %v; want the limit, 3", len(recs), err)
	}
	if recs[0].EventID != "evt-4" || recs[2].EventID != "evt-2" {
		t.Fatalf("not newest first: %s … %s", recs[0].EventID, recs[2].EventID)
	}
	for _, r := range recs {
		all := fmt.Sprint(r.Header, r.URI)
		if strings.Contains(all, "s3cret") || strings.Contains(all, "k3y") || strings.Contains(all, "qs3cret") {
			t.Fatalf("a credential in the log: %s", all)
		}
		if r.Header.Get("Content-Type") != "application/json" || !strings.Contains(r.URI, "x=1") {
			t.Fatalf("too much redacted: %v %s", r.Header, r.URI)
		}
	}
	if refused, _ := l.List(ctx, "r", reqlog.Filter{Outcome: "unauthorized"}); len(refused) != 1 || refused[0].Status != 401 {
		t.Fatalf("filter by outcome: %+v", refused)
	}
	if refused, _ := l.List(ctx, "r", reqlog.Filter{Outcome: "refused"}); len(refused) != 1 {
		t.Fatalf("filter refused: %+v", refused)
	}
	got, err := l.Get(ctx, "r", recs[1].ID)
	if err != nil || got.EventID != recs[1].EventID || string(got.BodyBytes()) != `{"n":3}` {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := l.Get(ctx, "r", "req_nope"); err != reqlog.ErrNotFound {
		t.Fatalf("Get(unknown) = %v", err)
	}
	b, _ := l.List(ctx, "bin", reqlog.Filter{})
	if len(b) != 1 || string(b[0].BodyBytes()) != "\xff\x00x" {
		t.Fatalf("a binary body: %+v", b)
	}
}

func TestMemory(t *testing.T) { conformance(t, reqlog.NewMemory(), func() {}) }

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	l := reqlog.NewRedis(c, "hg:")
	t.Cleanup(l.Close)
	conformance(t, l, func() {
		testwait.Until(t, 30*time.Second, func() bool {
			n, _ := c.LLen(context.Background(), "hg:rl:{bin}").Result()
			return n == 1
		}, "the writer to write the record")
	})
	// Another instance reads the same log.
	c2 := srv.Client(t)
	l2 := reqlog.NewRedis(c2, "hg:")
	l2.SetLimit("r", 3)
	if recs, _ := l2.List(context.Background(), "r", reqlog.Filter{}); len(recs) != 3 {
		t.Fatalf("the other instance sees %d records", len(recs))
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
