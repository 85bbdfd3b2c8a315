package gateway

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/series"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/prometheus/client_golang/prometheus"
)

// The console's recent activity: per route, inbound requests by outcome; per endpoint,
// delivery attempts by outcome and samples of its pending count and oldest pending age;
// each over the last 10 minutes (10-second steps) and the last hour (1-minute steps). It
// is kept in memory by this instance for the life of the process (across reloads, like
// the admin counters), never in the store: each instance charts what it did.
const (
	// maxChartedRoutes and maxChartedEndpoints bound the memory (about 1 KB per series):
	// routes and endpoints past them are charted together as otherSeries.
	maxChartedRoutes    = 200
	maxChartedEndpoints = 500
	otherSeries         = "(other)"
	// sampleEvery is how often pending counts and ages are read from the store.
	sampleEvery = 10 * time.Second
)

// activityLog holds every route's and endpoint's series.
type activityLog struct {
	mu        sync.Mutex
	routes    map[string]*routeActivity
	endpoints map[string]*endpointActivity
}

var activity = &activityLog{routes: map[string]*routeActivity{}, endpoints: map[string]*endpointActivity{}}

// routeActivity is one route's requests by outcome.
type routeActivity struct {
	mu       sync.RWMutex
	outcomes map[string]*series.Counter
}

// endpointActivity is one endpoint's attempts by outcome and its sampled queue.
type endpointActivity struct {
	mu           sync.RWMutex
	results      map[string]*series.Counter
	pending, age series.Gauge
}

func (l *activityLog) route(name string) *routeActivity {
	l.mu.Lock()
	defer l.mu.Unlock()
	return capped(l.routes, name, maxChartedRoutes, func() *routeActivity {
		return &routeActivity{outcomes: map[string]*series.Counter{}}
	})
}

func (l *activityLog) endpoint(name string) *endpointActivity {
	l.mu.Lock()
	defer l.mu.Unlock()
	return capped(l.endpoints, name, maxChartedEndpoints, func() *endpointActivity {
		return &endpointActivity{results: map[string]*series.Counter{}}
	})
}

// capped returns m[name], made on first use; once m holds limit entries, a new name shares
// the otherSeries entry.
func capped[V any](m map[string]*V, name string, limit int, mk func() *V) *V {
	if v := m[name]; v != nil {
		return v
	}
	if len(m) >= limit {
		name = otherSeries
		if v := m[name]; v != nil {
			return v
		}
	}
	v := mk()
	m[name] = v
	return v
}

// counter returns the counter of key in m (guarded by mu), made on first use.
func counter(mu *sync.RWMutex, m map[string]*series.Counter, key string) *series.Counter {
	mu.RLock()
	c := m[key]
	mu.RUnlock()
	if c != nil {
		return c
	}
	mu.Lock()
	defer mu.Unlock()
	if c = m[key]; c == nil {
		c = new(series.Counter)
		m[key] = c
	}
	return c
}

// counters resolves a route's counters for every outcome the core ends a webhook with, so
// a request's count is one map read and one compare-and-swap per ring.
func (ra *routeActivity) counters() map[problem.Reason]*series.Counter {
	m := make(map[problem.Reason]*series.Counter, len(problem.InboundReasons))
	for _, r := range problem.InboundReasons {
		m[r] = counter(&ra.mu, ra.outcomes, string(r))
	}
	return m
}

// counterOf returns the route's counter of outcome, made on first use.
func (ra *routeActivity) counterOf(outcome string) *series.Counter {
	return counter(&ra.mu, ra.outcomes, outcome)
}

// attempted counts one delivery attempt of endpoint.
func (l *activityLog) attempted(endpoint, outcome string, now time.Time) {
	ea := l.endpoint(endpoint)
	counter(&ea.mu, ea.results, outcome).Add(now.Unix(), 1)
}

// sample records each endpoint's pending count and oldest pending age (how long its most
// overdue delivery has been due) from statuses read at now.
func (l *activityLog) sample(names []string, sts []queue.EndpointStatus, now time.Time) {
	for i, st := range sts {
		ea := l.endpoint(names[i])
		ea.pending.Set(now.Unix(), uint64(max(st.Pending, 0)))
		ea.age.Set(now.Unix(), uint64(pendingAge(st, now).Seconds()))
	}
}

// pendingAge is how long st's most overdue pending delivery has been due (0 when none is).
func pendingAge(st queue.EndpointStatus, now time.Time) time.Duration {
	if st.Pending == 0 || st.OldestDue.IsZero() || !st.OldestDue.Before(now) {
		return 0
	}
	return now.Sub(st.OldestDue)
}

// sampleQueues reads every endpoint's status once (one batched read) into the series.
func (g *Gateway) sampleQueues(ctx context.Context) {
	names := g.sender.Registry().Names()
	if Active() == g { // a config being replaced must not drop its successor's series
		syncEndpointSeries(names)
	}
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sts, err := g.sender.Queue().Statuses(ctx, names)
	if err != nil {
		return // the store is away: the chart shows a gap
	}
	activity.sample(names, sts, time.Now())
}

// ActivityView is GET /webhooks/activity: this instance's recent activity.
type ActivityView struct {
	// Instance names the process that counted (host name and process id): each instance
	// keeps its own.
	Instance string `json:"instance"`
	// Window is "10m" (10-second steps) or "1h" (1-minute steps).
	Window string `json:"window"`
	// StepSeconds is the step; Start is the first step's start; each array has 60 values,
	// oldest first, the last one the step in progress.
	StepSeconds int64                  `json:"step_seconds"`
	Start       time.Time              `json:"start"`
	Routes      []RouteActivityView    `json:"routes"`
	Endpoints   []EndpointActivityView `json:"endpoints"`
}

// RouteActivityView is one route's requests per step, by outcome (outcomes never seen are left out).
type RouteActivityView struct {
	Route    string              `json:"route"`
	Outcomes map[string][]uint64 `json:"outcomes"`
}

// EndpointActivityView is one endpoint's attempts per step by outcome (delivered, retry,
// dead, gone), and its sampled pending count and oldest pending age in seconds (null for a
// step without a sample).
type EndpointActivityView struct {
	Endpoint          string              `json:"endpoint"`
	Attempts          map[string][]uint64 `json:"attempts"`
	Pending           []*uint64           `json:"pending"`
	OldestPendingAgeS []*uint64           `json:"oldest_pending_age_seconds"`
}

// view reads every series for window w at now; only routes and endpoints with any value
// in the window are listed, sorted by name.
func (l *activityLog) view(w series.Window, now time.Time, instance string) ActivityView {
	t := now.Unix()
	out := ActivityView{Instance: instance, Window: map[series.Window]string{series.Short: "10m", series.Long: "1h"}[w],
		StepSeconds: int64(w), Start: time.Unix(series.Start(w, t), 0).UTC(), Routes: []RouteActivityView{}, Endpoints: []EndpointActivityView{}}
	l.mu.Lock()
	routes := make(map[string]*routeActivity, len(l.routes))
	for k, v := range l.routes {
		routes[k] = v
	}
	endpoints := make(map[string]*endpointActivity, len(l.endpoints))
	for k, v := range l.endpoints {
		endpoints[k] = v
	}
	l.mu.Unlock()
	read := func(mu *sync.RWMutex, m map[string]*series.Counter) map[string][]uint64 {
		mu.RLock()
		defer mu.RUnlock()
		vals := map[string][]uint64{}
		for k, c := range m {
			if v := c.Read(w, t); anyNonZero(v) {
				vals[k] = v
			}
		}
		return vals
	}
	for _, name := range sortedKeys(routes) {
		if o := read(&routes[name].mu, routes[name].outcomes); len(o) > 0 {
			out.Routes = append(out.Routes, RouteActivityView{Route: name, Outcomes: o})
		}
	}
	for _, name := range sortedKeys(endpoints) {
		ea := endpoints[name]
		v := EndpointActivityView{Endpoint: name, Attempts: read(&ea.mu, ea.results), Pending: ea.pending.Read(w, t), OldestPendingAgeS: ea.age.Read(w, t)}
		if len(v.Attempts) > 0 || anySample(v.Pending) {
			out.Endpoints = append(out.Endpoints, v)
		}
	}
	return out
}

func anyNonZero(v []uint64) bool {
	for _, x := range v {
		if x != 0 {
			return true
		}
	}
	return false
}

func anySample(v []*uint64) bool {
	for _, x := range v {
		if x != nil {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// attemptOutcomes are the outcomes of caddy_webhook_outbound_attempts_total.
var attemptOutcomes = []string{"delivered", "retry", "dead", "gone"}

// endpointSeries tracks which endpoints have metric series, process-wide (across reloads).
var endpointSeries = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

// syncEndpointSeries makes every endpoint's attempt counters exist at 0 before its first
// attempt (an alert on increase() cannot see a series born at 1), and forgets the series
// and the console's activity of endpoints no longer configured (deleted subscriptions,
// endpoints removed by a reload), so churn does not grow them without bound.
func syncEndpointSeries(names []string) {
	live := make(map[string]bool, len(names))
	for _, n := range names {
		live[n] = true
	}
	endpointSeries.Lock()
	defer endpointSeries.Unlock()
	for _, n := range names {
		if !endpointSeries.names[n] {
			for _, o := range attemptOutcomes {
				outboundAttempts.WithLabelValues(n, o)
			}
			endpointSeries.names[n] = true
		}
	}
	var gone []string
	for n := range endpointSeries.names {
		if !live[n] {
			gone = append(gone, n)
			delete(endpointSeries.names, n)
			labels := prometheus.Labels{"endpoint": n}
			outboundAttempts.DeletePartialMatch(labels)
			deliveryDuration.DeletePartialMatch(labels)
			breakerTransitions.DeletePartialMatch(labels)
		}
	}
	activity.forget(gone)
}

// forget drops the series of endpoints no longer configured.
func (l *activityLog) forget(names []string) {
	if len(names) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range names {
		delete(l.endpoints, n)
	}
}
