package gateway

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/series"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender/queue"
)

func TestActivityCountsOutcomesAttemptsAndSamples(t *testing.T) {
	o := newRouteObserver("activity-route", "ploomes")
	for i := 0; i < 3; i++ {
		o.observe(receiver.Result{Reason: problem.ReasonAccepted, Status: 200})
	}
	o.observe(receiver.Result{Reason: problem.ReasonDuplicate, Status: 200})
	o.observe(receiver.Result{Reason: problem.Reason("made_up"), Status: 500}) // not a known outcome: counted all the same
	o.observe(receiver.Result{Reason: problem.ReasonAccepted, Status: 502})    // handed on, the backend refused: the sender retries
	observer{}.Attempted("activity-ep", "retry", 503, time.Millisecond)
	observer{}.Attempted("activity-ep", "delivered", 204, time.Millisecond)
	now := time.Now()
	activity.sample([]string{"activity-ep"}, []queue.EndpointStatus{{Pending: 7, OldestDue: now.Add(-90 * time.Second)}}, now)

	for _, w := range []series.Window{series.Short, series.Long} {
		v := activity.view(w, now, "test")
		var route *RouteActivityView
		for i := range v.Routes {
			if v.Routes[i].Route == "activity-route" {
				route = &v.Routes[i]
			}
		}
		if route == nil {
			t.Fatalf("%d: route not listed: %+v", w, v.Routes)
		}
		if got := last2(route.Outcomes["accepted"]); got != 3 {
			t.Errorf("%d: accepted = %d", w, got)
		}
		if last2(route.Outcomes["duplicate"]) != 1 || last2(route.Outcomes["made_up"]) != 1 || last2(route.Outcomes["backend_5xx"]) != 1 {
			t.Errorf("%d: outcomes = %v", w, route.Outcomes)
		}
		var ep *EndpointActivityView
		for i := range v.Endpoints {
			if v.Endpoints[i].Endpoint == "activity-ep" {
				ep = &v.Endpoints[i]
			}
		}
		if ep == nil || last2(ep.Attempts["retry"]) != 1 || last2(ep.Attempts["delivered"]) != 1 {
			t.Fatalf("%d: endpoint = %+v", w, ep)
		}
		p, a := ep.Pending[series.Slots-1], ep.OldestPendingAgeS[series.Slots-1]
		if p == nil || *p != 7 || a == nil || *a < 89 || *a > 91 {
			t.Fatalf("%d: samples %v %v", w, p, a)
		}
		if v.StepSeconds != int64(w) || len(ep.Pending) != series.Slots {
			t.Fatalf("%d: step %d, %d slots", w, v.StepSeconds, len(ep.Pending))
		}
	}
	// A 5xx answer counts in the responses' 5xx class.
	if o.responses[5] == nil || o.responses[2] == nil {
		t.Fatal("response classes not resolved")
	}
}

func TestPendingAge(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		st   queue.EndpointStatus
		want time.Duration
	}{
		{queue.EndpointStatus{}, 0},
		{queue.EndpointStatus{Pending: 1, OldestDue: now.Add(time.Minute)}, 0}, // waiting for a later retry
		{queue.EndpointStatus{Pending: 1, OldestDue: now.Add(-time.Minute)}, time.Minute},
		{queue.EndpointStatus{Pending: 0, OldestDue: now.Add(-time.Minute)}, 0},
	} {
		if got := pendingAge(c.st, now); got != c.want {
			t.Errorf("pendingAge(%+v) = %v, want %v", c.st, got, c.want)
		}
	}
}

// last2 sums the last two steps (a test may straddle a step's end).
func last2(v []uint64) uint64 {
	if len(v) < 2 {
		return 0
	}
	return v[len(v)-1] + v[len(v)-2]
}

// BenchmarkRouteObserve is what recording one webhook costs (metrics, admin counters),
// with the console's series and without them.
func BenchmarkRouteObserve(b *testing.B) {
	res := receiver.Result{Reason: problem.ReasonAccepted, Status: 200, Stages: receiver.Stages{Auth: time.Microsecond, Parse: time.Microsecond, Validate: 20 * time.Microsecond, Store: 5 * time.Microsecond}}
	for _, c := range []struct {
		name   string
		charts bool
	}{{"with-charts", true}, {"without-charts", false}} {
		b.Run(c.name, func(b *testing.B) {
			o := newRouteObserver("bench-"+c.name, "ploomes")
			if !c.charts {
				o.activity = nil
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				o.observe(res)
			}
		})
	}
}

// Past its limit, new names share the (other) series; known names keep theirs.
func TestCappedSharesOtherPastTheLimit(t *testing.T) {
	m := map[string]*int{}
	mk := func() *int { return new(int) }
	a, b := capped(m, "a", 2, mk), capped(m, "b", 2, mk)
	c, d := capped(m, "c", 2, mk), capped(m, "d", 2, mk)
	if a == b || c != d || c != m[otherSeries] || capped(m, "a", 2, mk) != a || len(m) != 3 {
		t.Fatalf("capped: %v", m)
	}
}
