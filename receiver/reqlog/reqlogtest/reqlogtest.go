// Package reqlogtest is the conformance suite every reqlog.Log passes: the memory log
// (the embedded store's) and the Redis log, standalone and on a Cluster, run these same
// tests. It checks what the package's API promises: records added are listed newest
// first, per route, up to the route's limit and a filter's; one is found by its id, and an
// unknown one is reqlog.ErrNotFound; credentials are redacted; the byte budget holds across
// routes; and, where the log is shared, another instance reads what one wrote.
package reqlogtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/reqlog"
)

// Fixture is one log under test and the other handles on its data a case may ask for:
// the shape of every store's conformance suite (dedupetest, ordertest, queuetest,
// substest), Run(t, func(t *testing.T) Fixture), called once per case.
type Fixture struct {
	// Store is a fresh, empty log (its own key prefix); the factory cleans it up when the
	// test ends.
	Store reqlog.Log
	// Reopen returns a new log over the same data, as after a restart of the process; nil
	// for a log that does not outlive its process (the memory log).
	Reopen func() reqlog.Log
	// Beside returns a second log over the same data that runs beside Store, as another
	// Caddy instance does; nil for a log that one process holds (the memory log).
	Beside func() reqlog.Log
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

// Entry is a request of route as the request path records it: numbered i (its event id
// is "evt-i", its body {"n":i}), with credentials in a header, in a header the route
// names, and in the query.
func Entry(route string, i int, outcome string, status int) *reqlog.Entry {
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

// BigEntry is an unauthenticated request as a hostile client sends it: a body cut at the
// default 16 KB and 4 KB of headers. Its event id is "route-i".
func BigEntry(route string, i int) *reqlog.Entry {
	now := time.Now()
	return &reqlog.Entry{
		Record: reqlog.Record{ID: reqlog.NewID(now), Route: route, Time: now, Outcome: "unauthorized", Status: 401,
			EventID: fmt.Sprintf("%s-%d", route, i), BodySize: 60 << 10, BodyCut: true},
		RawHeader: http.Header{"Content-Type": {"application/json"}, "X-Filler": {strings.Repeat("h", 4<<10)}},
		Path:      "/in", Redact: reqlog.NewRedactor(nil, nil),
		RawBody: bytes.Repeat([]byte("b"), reqlog.DefaultBody),
	}
}

// Written waits until each of entries, the last entry added to its route, is listed: a log
// may write in the background (Redis), in the order entries were added to a route, so every
// entry of the route added before it is written too. It fails the test after 30s.
func Written(t *testing.T, l reqlog.Log, entries ...*reqlog.Entry) {
	t.Helper()
	// Each route separately: on a Cluster the routes' lists live on different nodes, and
	// one batch's writes to them land in no particular order.
	for _, e := range entries {
		testwait.Until(t, 30*time.Second, func() bool {
			recs, err := l.List(context.Background(), e.Route, reqlog.Filter{Limit: 1})
			return err == nil && len(recs) == 1 && recs[0].ID == e.ID
		}, e.Route+"'s newest record to be "+e.ID)
	}
}

// BudgetBurst sets a budget of 1 MB on l and gives each of 20 routes in turn a burst of
// 50 BigEntry records (route-00's are the oldest), then waits until they are written. It
// returns the routes.
func BudgetBurst(t *testing.T, l reqlog.Log) []string {
	t.Helper()
	l.SetMaxBytes(budget)
	routes := make([]string, 20)
	for r := range routes {
		routes[r] = fmt.Sprintf("route-%02d", r)
		l.SetLimit(routes[r], reqlog.DefaultLimit)
	}
	var last *reqlog.Entry
	for _, route := range routes {
		for i := range 50 {
			last = BigEntry(route, i)
			l.Add(last)
		}
	}
	Written(t, l, last)
	return routes
}

const budget = 1 << 20

// Run runs the suite, each case on a fixture of its own.
func Run(t *testing.T, newLog Factory) {
	ctx := context.Background()

	t.Run("ListNewestFirstRedactedFilteredAndGet", func(t *testing.T) {
		l := newLog(t).Store
		l.SetLimit("r", 3)
		var lastR *reqlog.Entry
		for i := range 5 {
			outcome, status := "accepted", 200
			if i == 3 {
				outcome, status = "unauthorized", 401
			}
			lastR = Entry("r", i, outcome, status)
			l.Add(lastR)
		}
		other := Entry("other", 9, "accepted", 200)
		l.Add(other)
		bin := Entry("bin", 0, "accepted", 200)
		bin.RawBody = []byte{0xff, 0x00, 'x'}
		l.Add(bin)
		Written(t, l, lastR, other, bin)
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
	})

	t.Run("RecordKeepsEveryField", func(t *testing.T) {
		l := newLog(t).Store
		e := Entry("r", 1, "invalid", 422)
		e.Remote, e.Method, e.Host, e.TLS = "203.0.113.7:4242", "POST", "hooks.example.com", true
		e.Detail = "the body does not match the schema"
		e.Errors = []problem.Violation{{Pointer: "/deal/id", Message: "required", Errors: []problem.Violation{{Pointer: "/deal", Message: "nested"}}}}
		e.OrderKey, e.OrderValue = "deal:7", "2025-10-01T14:05:00Z"
		e.Stages = reqlog.Stages{Auth: 0.25, Parse: 0.5, Validate: 1.5, Store: 2, Total: 4.25}
		e.Replay, e.ReplayOf, e.Forced = true, "req_earlier", true
		e.Time = e.Time.Round(time.Millisecond)
		l.Add(e)
		Written(t, l, e)
		want, _ := json.Marshal(e.Materialize())
		got, err := l.Get(ctx, "r", e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g, _ := json.Marshal(got); string(g) != string(want) {
			t.Fatalf("Get returned\n%s\nwant\n%s", g, want)
		}
		listed, err := l.List(ctx, "r", reqlog.Filter{})
		if err != nil || len(listed) != 1 {
			t.Fatalf("List = %v, %v", listed, err)
		}
		if g, _ := json.Marshal(listed[0]); string(g) != string(want) {
			t.Fatalf("List returned\n%s\nwant\n%s", g, want)
		}
	})

	t.Run("FilterLimitAndDefault", func(t *testing.T) {
		l := newLog(t).Store
		l.SetLimit("r", 100)
		var last *reqlog.Entry
		for i := range 80 {
			outcome, status := "accepted", 202
			if i%4 == 0 {
				outcome, status = "unauthorized", 401
			}
			last = Entry("r", i, outcome, status)
			l.Add(last)
		}
		Written(t, l, last)
		all, err := l.List(ctx, "r", reqlog.Filter{})
		if err != nil || len(all) != 50 {
			t.Fatalf("List without a limit = %d records, %v; want the default, 50", len(all), err)
		}
		for i, r := range all {
			if want := fmt.Sprintf("evt-%d", 79-i); r.EventID != want {
				t.Fatalf("record %d is %s, want %s (newest first)", i, r.EventID, want)
			}
		}
		five, _ := l.List(ctx, "r", reqlog.Filter{Limit: 5})
		if len(five) != 5 || five[0].EventID != "evt-79" || five[4].EventID != "evt-75" {
			t.Fatalf("Limit 5: %v", eventIDs(five))
		}
		refused, _ := l.List(ctx, "r", reqlog.Filter{Outcome: "refused", Limit: 3})
		if got := eventIDs(refused); fmt.Sprint(got) != "[evt-76 evt-72 evt-68]" {
			t.Fatalf("refused, limit 3: %v", got)
		}
		if everything, _ := l.List(ctx, "r", reqlog.Filter{Limit: 1000}); len(everything) != 80 {
			t.Fatalf("Limit 1000 lists %d of 80 records", len(everything))
		}
		if none, err := l.List(ctx, "r", reqlog.Filter{Outcome: "duplicate"}); err != nil || len(none) != 0 {
			t.Fatalf("an outcome no record has: %v, %v", eventIDs(none), err)
		}
	})

	t.Run("RoutesAreIndependent", func(t *testing.T) {
		l := newLog(t).Store
		l.SetLimit("a", 2)
		l.SetLimit("b", 5)
		var inA, last *reqlog.Entry
		for i := range 4 {
			inA = Entry("a", i, "accepted", 200)
			l.Add(inA)
			last = Entry("b", 10+i, "accepted", 200)
			l.Add(last)
		}
		Written(t, l, inA, last)
		if a, _ := l.List(ctx, "a", reqlog.Filter{}); fmt.Sprint(eventIDs(a)) != "[evt-3 evt-2]" {
			t.Fatalf("route a: %v (its limit is 2)", eventIDs(a))
		}
		if b, _ := l.List(ctx, "b", reqlog.Filter{}); fmt.Sprint(eventIDs(b)) != "[evt-13 evt-12 evt-11 evt-10]" {
			t.Fatalf("route b: %v", eventIDs(b))
		}
		if _, err := l.Get(ctx, "b", inA.ID); err != reqlog.ErrNotFound {
			t.Fatalf("a's record found under route b: %v", err)
		}
		if none, err := l.List(ctx, "nosuchroute", reqlog.Filter{}); err != nil || len(none) != 0 {
			t.Fatalf("a route with no records: %v, %v", none, err)
		}
		if _, err := l.Get(ctx, "nosuchroute", inA.ID); err != reqlog.ErrNotFound {
			t.Fatalf("Get on a route with no records: %v", err)
		}
	})

	t.Run("LimitKeepsTheNewest", func(t *testing.T) {
		l := newLog(t).Store
		var last *reqlog.Entry
		for i := range reqlog.DefaultLimit + 10 { // no SetLimit: the default
			last = Entry("r", i, "accepted", 200)
			l.Add(last)
		}
		Written(t, l, last)
		all, _ := l.List(ctx, "r", reqlog.Filter{Limit: 1000})
		if len(all) != reqlog.DefaultLimit || all[0].EventID != fmt.Sprintf("evt-%d", reqlog.DefaultLimit+9) {
			t.Fatalf("default limit: %d records, newest %v", len(all), eventIDs(all[:1]))
		}
		l.SetLimit("r", 4) // a smaller limit lists the newest 4 at once
		if four, _ := l.List(ctx, "r", reqlog.Filter{Limit: 1000}); len(four) != 4 || four[0].EventID != last.EventID {
			t.Fatalf("after SetLimit 4: %v", eventIDs(four))
		}
		if _, err := l.Get(ctx, "r", all[10].ID); err != reqlog.ErrNotFound {
			t.Fatalf("a record beyond the limit is still found: %v", err)
		}
		next := Entry("r", 1000, "accepted", 200)
		l.Add(next)
		Written(t, l, next)
		if four, _ := l.List(ctx, "r", reqlog.Filter{Limit: 1000}); len(four) != 4 || four[1].EventID != last.EventID {
			t.Fatalf("after one more: %v", eventIDs(four))
		}
	})

	// With a byte budget, the log across every route holds no more than it (as the
	// records are listed), and the newest record stays.
	t.Run("BudgetHolds", func(t *testing.T) {
		l := newLog(t).Store
		routes := BudgetBurst(t, l)
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
	})

	t.Run("SharedAndDurable", func(t *testing.T) {
		fx := newLog(t)
		l := fx.Store
		l.SetLimit("r", 3)
		var last *reqlog.Entry
		for i := range 5 {
			last = Entry("r", i, "accepted", 200)
			l.Add(last)
		}
		Written(t, l, last)
		if fx.Beside == nil && fx.Reopen == nil {
			t.Log("this log is one process's: nothing reads it beside it, or after a restart")
			return
		}
		for name, again := range map[string]func() reqlog.Log{"beside": fx.Beside, "reopened": fx.Reopen} {
			if again == nil {
				continue
			}
			l2 := again()
			l2.SetLimit("r", 3)
			recs, err := l2.List(ctx, "r", reqlog.Filter{})
			if err != nil || fmt.Sprint(eventIDs(recs)) != "[evt-4 evt-3 evt-2]" {
				t.Fatalf("the %s log lists %v, %v", name, eventIDs(recs), err)
			}
			if got, err := l2.Get(ctx, "r", last.ID); err != nil || got.EventID != last.EventID {
				t.Fatalf("the %s log's Get: %+v, %v", name, got, err)
			}
		}
	})
}

func eventIDs(recs []reqlog.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.EventID
	}
	return out
}
