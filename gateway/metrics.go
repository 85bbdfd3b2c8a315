package gateway

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/series"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/prometheus/client_golang/prometheus"
)

// The collectors are created once per process and registered on every config's registry
// (Caddy makes a fresh one per config load), ignoring "already registered": series survive
// reloads and no registration ever panics.
var (
	inboundRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "inbound_requests_total",
		Help: "Inbound webhook requests by route, source (preset) and outcome (accepted, queued, duplicate, stale, order_ahead, or the rejection reason).",
	}, []string{"route", "source", "outcome"})
	inboundStages = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "inbound_stage_duration_seconds",
		Help:    "Time spent in each inbound stage: auth, parse, validate, store, transform.",
		Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
	}, []string{"route", "stage"})
	inboundResponses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "inbound_responses_total",
		Help: "Answers of webhook_receive routes by route and status class (2xx, 4xx, 5xx; a backend's answer passed on counts as its own class), for error ratios.",
	}, []string{"route", "code"})
	outboundAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "outbound_attempts_total",
		Help: "Delivery attempts by endpoint and outcome (delivered, retry, dead, gone).",
	}, []string{"endpoint", "outcome"})
	deliveryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "delivery_duration_seconds",
		Help:    "Duration of delivery attempts by endpoint.",
		Buckets: prometheus.DefBuckets,
	}, []string{"endpoint"})
	queueDepthDesc = prometheus.NewDesc("caddy_webhook_queue_depth",
		"Deliveries in the queue by endpoint and state (pending, dead; delivered counts every delivery ever delivered).",
		[]string{"endpoint", "state"}, nil)
)

// queueDepth reads the running app's queue at scrape time (every endpoint's status in
// one batched read), and describes its subscriptions.
type queueDepth struct{}

var (
	subscriptionInfoDesc = prometheus.NewDesc("caddy_webhook_subscription_info",
		"One series per run-time subscription: its id (the endpoint label of the delivery metrics) and description.",
		[]string{"endpoint", "description"}, nil)
	subscriptionsDesc = prometheus.NewDesc("caddy_webhook_subscriptions",
		"Run-time subscriptions this instance delivers to.", nil, nil)
	storeDamagedDesc = prometheus.NewDesc("caddy_webhook_store_damaged",
		"1 once the embedded store file was found damaged while running (every store call is then refused), else 0.", nil, nil)
	filterFailuresDesc = prometheus.NewDesc("caddy_webhook_filter_failures_total",
		"Filter evaluations of endpoints with a filter that failed, so the endpoint did not get the event, by endpoint and reason (error: at run time; over_budget: the publish's filter budget was used up).",
		[]string{"endpoint", "reason"}, nil)
	transformFailuresDesc = prometheus.NewDesc("caddy_webhook_transform_failures_total",
		"Runs of endpoints' transforms that failed, by endpoint and reason (error: at run time; over_budget: its cost limit or the publish's budget), at enqueue (the delivery is held as failed) and at the attempts that run it again. Inbound routes count theirs as caddy_webhook_inbound_requests_total{outcome=\"transform_failed\"}.",
		[]string{"endpoint", "reason"}, nil)
	quarantineHeldDesc = prometheus.NewDesc("caddy_webhook_quarantine_requests",
		"Requests held in each route's quarantine (on_invalid quarantine), as stored (shared by every instance on a Redis store).",
		[]string{"route"}, nil)
	quarantineBytesDesc = prometheus.NewDesc("caddy_webhook_quarantine_bytes",
		"What each route's quarantine counts against its max_bytes: held requests and the history kept.",
		[]string{"route"}, nil)
	quarantineOldestDesc = prometheus.NewDesc("caddy_webhook_quarantine_oldest_age_seconds",
		"Age of the oldest request held in each route's quarantine; 0 when it holds none.",
		[]string{"route"}, nil)
	oldestPendingDesc = prometheus.NewDesc("caddy_webhook_queue_oldest_pending_age_seconds",
		"How long each endpoint's most overdue pending delivery has been due, in seconds (0 when none is due): how far its deliveries are behind. An open breaker or a disabled endpoint keeps its deliveries due, so it is then the age of the oldest; a delivery waiting for a later retry is not overdue.",
		[]string{"endpoint"}, nil)
	storeUpDesc = prometheus.NewDesc("caddy_webhook_store_up",
		"1 when the store answered at this scrape (the embedded file open and sound; Redis answered PING within 2 s), else 0.", nil, nil)
	feedLastCallDesc = prometheus.NewDesc("caddy_webhook_feed_last_call_timestamp_seconds",
		"When each feed was last called and answered, in Unix seconds, as stored; 0 when it never was.",
		[]string{"feed"}, nil)
	feedPendingDesc = prometheus.NewDesc("caddy_webhook_feed_pending",
		"Records of each feed waiting to be pulled, as stored.", []string{"feed"}, nil)
	breakerStateDesc = prometheus.NewDesc("caddy_webhook_breaker_state",
		"Each endpoint's circuit breaker, as stored (shared by every instance on a Redis store): 1 for its state (closed, open, half_open: the next delivery is the probe), 0 for the others.",
		[]string{"endpoint", "state"}, nil)
)

// breakerTransitions counts what this instance did to breakers.
var breakerTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy", Subsystem: "webhook", Name: "breaker_transitions_total",
	Help: "Circuit breaker transitions this instance made, by endpoint and the state entered (open: a threshold, a failed probe or an operator; closed: a probe succeeded or an operator).",
}, []string{"endpoint", "to"})

func (queueDepth) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- subscriptionInfoDesc
	ch <- subscriptionsDesc
	ch <- storeDamagedDesc
	ch <- filterFailuresDesc
	ch <- transformFailuresDesc
	ch <- breakerStateDesc
	ch <- quarantineHeldDesc
	ch <- quarantineBytesDesc
	ch <- quarantineOldestDesc
	ch <- oldestPendingDesc
	ch <- storeUpDesc
	ch <- feedLastCallDesc
	ch <- feedPendingDesc
}

func (queueDepth) Collect(ch chan<- prometheus.Metric) {
	g := Active()
	if g == nil {
		return
	}
	eps := g.sender.Registry().List()
	names := make([]string, len(eps))
	subs := 0
	for i, e := range eps {
		names[i] = e.Name
		if e.Filter != "" {
			fs := e.FilterStats()
			ch <- prometheus.MustNewConstMetric(filterFailuresDesc, prometheus.CounterValue, float64(fs.Errors), e.Name, "error")
			ch <- prometheus.MustNewConstMetric(filterFailuresDesc, prometheus.CounterValue, float64(fs.OverBudget), e.Name, "over_budget")
		}
		if e.Transform != "" {
			ts := e.TransformStats()
			ch <- prometheus.MustNewConstMetric(transformFailuresDesc, prometheus.CounterValue, float64(ts.Errors), e.Name, "error")
			ch <- prometheus.MustNewConstMetric(transformFailuresDesc, prometheus.CounterValue, float64(ts.OverBudget), e.Name, "over_budget")
		}
		if e.Subscription {
			subs++
			ch <- prometheus.MustNewConstMetric(subscriptionInfoDesc, prometheus.GaugeValue, 1, e.Name, e.Description)
		}
	}
	ch <- prometheus.MustNewConstMetric(subscriptionsDesc, prometheus.GaugeValue, float64(subs))
	if h, ok := g.stores.Health(); ok {
		damaged := 0.0
		if h.Damage != nil {
			damaged = 1
		}
		ch <- prometheus.MustNewConstMetric(storeDamagedDesc, prometheus.GaugeValue, damaged)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
	up := 1.0
	if g.stores.Ping(pctx) != nil {
		up = 0
	}
	pcancel()
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, up)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.collectQuarantines(ctx, ch)
	g.collectFeeds(ctx, ch)
	sts, err := g.sender.Queue().Statuses(ctx, names)
	if err != nil {
		return
	}
	now := time.Now()
	for i, st := range sts {
		ch <- prometheus.MustNewConstMetric(oldestPendingDesc, prometheus.GaugeValue, pendingAge(st, now).Seconds(), names[i])
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Pending), names[i], "pending")
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Dead), names[i], "dead")
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Delivered), names[i], "delivered")
		reported := st.Breaker.Reported(now)
		for _, state := range []queue.BreakerState{queue.BreakerClosed, queue.BreakerOpen, queue.BreakerHalfOpen} {
			v := 0.0
			if state == reported {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, v, names[i], string(state))
		}
	}
}

var (
	feedRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "feed_records_total",
		Help: "Feed records by feed and event (published, served, requeued).",
	}, []string{"feed", "event"})
	feedCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "feed_calls_total",
		Help: "Calls of webhook_feed routes by feed and status (200, 401, 405, 503, cut: the answer could not be written whole).",
	}, []string{"feed", "status"})
)

var collectors = []prometheus.Collector{inboundRequests, inboundResponses, inboundStages, outboundAttempts, deliveryDuration, queueDepth{},
	feedRecords, feedCalls, breakerTransitions, schemaDrift, quarantineExpired}

// RegisterMetrics registers Hookgate's collectors on a config's registry (Caddy makes a
// fresh one per config load); registering twice is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// observer feeds delivery attempts to the metrics.
type observer struct{}

func (observer) BreakerTransition(endpoint string, to queue.BreakerState) {
	breakerTransitions.WithLabelValues(endpoint, string(to)).Inc()
}

func (observer) Attempted(endpoint, outcome string, status int, latency time.Duration) {
	activity.attempted(endpoint, outcome, time.Now())
	outboundAttempts.WithLabelValues(endpoint, outcome).Inc()
	deliveryDuration.WithLabelValues(endpoint).Observe(latency.Seconds())
}

// routeObserver records one route's webhooks in the metrics and the admin counters. Its
// series are resolved once, when the handler is provisioned, so a request does no label
// hashing and no map lookup.
type routeObserver struct {
	requests                     map[problem.Reason]prometheus.Counter // read-only once built
	route, source                string
	auth, parse, validate, store prometheus.Observer
	transform                    prometheus.Observer
	counts                       *routeCounts
	// activity are the console's series of the route, by outcome; nil charts nothing.
	activity map[problem.Reason]*series.Counter
	// responses count answers by status class (2xx, 4xx, 5xx), for the 5xx ratio.
	responses [6]prometheus.Counter
}

func newRouteObserver(route, source string) *routeObserver {
	o := &routeObserver{
		requests:  make(map[problem.Reason]prometheus.Counter, len(problem.InboundReasons)),
		route:     route,
		source:    source,
		auth:      inboundStages.WithLabelValues(route, "auth"),
		parse:     inboundStages.WithLabelValues(route, "parse"),
		validate:  inboundStages.WithLabelValues(route, "validate"),
		store:     inboundStages.WithLabelValues(route, "store"),
		transform: inboundStages.WithLabelValues(route, "transform"),
		counts:    inbound.route(route, source),
		activity:  activity.route(route).counters(),
	}
	for _, r := range problem.InboundReasons {
		o.requests[r] = inboundRequests.WithLabelValues(route, source, string(r))
	}
	for class := 1; class <= 5; class++ {
		o.responses[class] = inboundResponses.WithLabelValues(route, strconv.Itoa(class)+"xx")
	}
	return o
}

// observe records one request.
func (o *routeObserver) observe(res receiver.Result) {
	c, ok := o.requests[res.Reason]
	if !ok {
		c = inboundRequests.WithLabelValues(o.route, o.source, string(res.Reason))
	}
	c.Inc()
	if class := res.Status / 100; class >= 1 && class <= 5 {
		o.responses[class].Inc()
	}
	now := time.Now()
	if o.activity != nil {
		if res.Reason == problem.ReasonAccepted && res.Status >= 300 {
			// Handed on and refused by the backend: the sender retries it (as the admin
			// counters say, rejected backend_<status>).
			activity.route(o.route).counterOf("backend_"+strconv.Itoa(res.Status/100)+"xx").Add(now.Unix(), 1)
		} else if a := o.activity[res.Reason]; a != nil {
			a.Add(now.Unix(), 1)
		} else {
			activity.route(o.route).counterOf(string(res.Reason)).Add(now.Unix(), 1)
		}
	}
	if res.Stages.Auth > 0 {
		o.auth.Observe(res.Stages.Auth.Seconds())
	}
	if res.Stages.Parse > 0 {
		o.parse.Observe(res.Stages.Parse.Seconds())
	}
	if res.Stages.Validate > 0 {
		o.validate.Observe(res.Stages.Validate.Seconds())
	}
	if res.Stages.Store > 0 {
		o.store.Observe(res.Stages.Store.Seconds())
	}
	if res.Stages.Transform > 0 {
		o.transform.Observe(res.Stages.Transform.Seconds())
	}
	o.counts.add(res, now)
}

// inboundCounters are the per-route counters of GET /webhooks/inbound, kept for the life
// of the process (across reloads: a route keeps its counters by name).
type inboundCounters struct {
	mu     sync.Mutex
	routes map[string]*routeCounts
}

// routeCounts are one route's counters, each route under its own lock.
type routeCounts struct {
	mu sync.Mutex
	routeCounters
}

type routeCounters struct {
	Source     string `json:"source"`
	Received   int64  `json:"received"`
	Accepted   int64  `json:"accepted"`
	Queued     int64  `json:"queued"`
	Duplicates int64  `json:"duplicates"`
	// Stale are events the stale-event guard answered 200 and did not hand on.
	Stale int64 `json:"stale"`
	// OrderAhead counts events handed on whose order value was too far ahead to record.
	OrderAhead int64 `json:"order_ahead"`
	// Quarantined are requests the schema refused that the route held (on_invalid quarantine).
	Quarantined int64            `json:"quarantined"`
	Rejected    map[string]int64 `json:"rejected"`
	LastAt      *time.Time       `json:"last_at,omitempty"`
}

var inbound = &inboundCounters{routes: map[string]*routeCounts{}}

// route returns the counters of the named route, made on first use.
func (c *inboundCounters) route(name, source string) *routeCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.routes[name]
	if rc == nil {
		rc = &routeCounts{routeCounters: routeCounters{Source: source, Rejected: map[string]int64{}}}
		c.routes[name] = rc
	}
	return rc
}

func (rc *routeCounts) add(res receiver.Result, now time.Time) {
	now = now.UTC()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.Received++
	rc.LastAt = &now
	switch res.Reason {
	case problem.ReasonAccepted:
		if res.Status >= 200 && res.Status < 300 {
			rc.Accepted++
		} else {
			rc.Rejected["backend_"+strconv.Itoa(res.Status)]++
		}
	case problem.ReasonQueued:
		rc.Queued++
	case problem.ReasonDuplicate, problem.ReasonInFlight:
		rc.Duplicates++
	case problem.ReasonOrderAhead:
		rc.OrderAhead++
	case problem.ReasonStale:
		rc.Stale++
	case problem.ReasonQuarantined:
		rc.Quarantined++
	default:
		rc.Rejected[string(res.Reason)]++
	}
}

// routeJSON is one route in GET /webhooks/inbound.
type routeJSON struct {
	Route string `json:"route"`
	// Transform is the route's transform expression in the running config, if any.
	Transform string `json:"transform,omitempty"`
	// OnInvalid is "quarantine" on a route that holds what its schema refuses; Quarantine
	// is then its quarantine at a glance (as stored).
	OnInvalid  string            `json:"on_invalid,omitempty"`
	Quarantine *quarantine.Stats `json:"quarantine,omitempty"`
	routeCounters
}

func (c *inboundCounters) snapshot() []routeJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []routeJSON{}
	for name, rc := range c.routes {
		rc.mu.Lock()
		cp := rc.routeCounters
		cp.Rejected = make(map[string]int64, len(rc.Rejected))
		for k, v := range rc.Rejected {
			cp.Rejected[k] = v
		}
		rc.mu.Unlock()
		if cp.Received == 0 {
			continue // provisioned, no webhook yet
		}
		out = append(out, routeJSON{Route: name, routeCounters: cp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// collectQuarantines reports the quarantine of each route that quarantines, or holds
// requests from when it did.
func (g *Gateway) collectQuarantines(ctx context.Context, ch chan<- prometheus.Metric) {
	g.mu.RLock()
	rts := make([]*Route, 0, len(g.routes))
	for _, rt := range g.routes {
		if rt != nil {
			rts = append(rts, rt)
		}
	}
	g.mu.RUnlock()
	for _, rt := range rts {
		st, err := g.stores.Quarantine.Stats(ctx, rt.name)
		if err != nil || (st.Held == 0 && st.Bytes == 0 && rt.onInvalid != OnInvalidQuarantine) {
			continue
		}
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(time.Since(st.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(quarantineHeldDesc, prometheus.GaugeValue, float64(st.Held), rt.name)
		ch <- prometheus.MustNewConstMetric(quarantineBytesDesc, prometheus.GaugeValue, float64(st.Bytes), rt.name)
		ch <- prometheus.MustNewConstMetric(quarantineOldestDesc, prometheus.GaugeValue, age, rt.name)
	}
}

// collectFeeds reports each feed's pending records and last call, as stored.
func (g *Gateway) collectFeeds(ctx context.Context, ch chan<- prometheus.Metric) {
	for _, f := range g.sender.Feeds() {
		st, err := f.Status(ctx)
		if err != nil {
			return
		}
		last := 0.0
		if st.LastCall != nil {
			last = float64(st.LastCall.At.Unix())
		}
		ch <- prometheus.MustNewConstMetric(feedLastCallDesc, prometheus.GaugeValue, last, st.Name)
		ch <- prometheus.MustNewConstMetric(feedPendingDesc, prometheus.GaugeValue, float64(st.Pending), st.Name)
	}
}
