package gateway

import (
	"context"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/internal/lifecycle"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Intervals of the quarantine's background tasks.
const (
	// driftFlush is how often the drift counts of this instance are added to the store.
	driftFlush = time.Second
	// trimEvery is how often the quarantines' retention is applied.
	trimEvery = time.Minute
	// driftMetricPointers bounds the pointers one route labels the drift metric with, per
	// process; the others count as "(other)".
	driftMetricPointers = 50
	// unnamedMessage is the message of an unnamed field's drift group.
	unnamedMessage = "not named by the schema"
	// maxDriftPointer and maxDriftMessage cut what a drift group keeps of a pointer and a
	// message (a sender's field names are the sender's to choose).
	maxDriftPointer = 256
	maxDriftMessage = 512
	// maxExampleSource is the largest body a drift example is made from (it is decoded to
	// redact it); a larger body's group keeps none.
	maxExampleSource = 256 << 10
)

// cut returns s cut to n bytes (at a rune boundary), marked with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

var (
	schemaDrift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "schema_drift_total",
		Help: "Requests of a route with a schema violation (kind violation) or a field the schema does not name (kind unnamed_field) at a JSON pointer (array indices as *; at most 50 pointers per route, the rest as \"(other)\"), seen by this instance, in either on_invalid mode.",
	}, []string{"route", "kind", "pointer"})
	quarantineExpired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhook", Name: "quarantine_expired_total",
		Help: "Quarantined requests deleted by this instance because they were held longer than the route's retention.",
	}, []string{"route"})
)

// driftBuffer gathers drift counts between two flushes to the store. Its groups stay
// (with their metric series resolved) across flushes, so a request whose groups are known
// costs one lock and a map lookup per group, and allocates nothing.
type driftBuffer struct {
	mu      sync.Mutex
	routes  map[string]map[groupID]*driftEntry
	metrics map[string]map[string]bool // route -> pointers labelled in schemaDrift
}

// groupID is a drift group's identity within its route.
type groupID struct{ kind, pointer, message string }

// driftEntry is one group: its counts since the last flush, and its metric.
type driftEntry struct {
	delta  quarantine.Group // Count, First, Last since the last flush; Example until flushed once
	metric prometheus.Counter
}

func newDriftBuffer() *driftBuffer {
	return &driftBuffer{routes: map[string]map[groupID]*driftEntry{}, metrics: map[string]map[string]bool{}}
}

// observe counts what one request of route showed. It runs on the request path.
func (b *driftBuffer) observe(route string, d receiver.Drift) {
	now := time.Now()
	var seen [8]groupID
	keys := seen[:0]
	var walk func(vs []problem.Violation)
	walk = func(vs []problem.Violation) {
		for _, v := range vs {
			if len(v.Errors) > 0 {
				walk(v.Errors)
				continue
			}
			k := groupID{quarantine.KindViolation, cut(quarantine.Generalize(v.Pointer), maxDriftPointer), cut(v.Message, maxDriftMessage)}
			if len(keys) < 20 && !containsKey(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	walk(d.Violations)
	for _, p := range d.Unnamed {
		keys = append(keys, groupID{quarantine.KindUnnamed, cut(p, maxDriftPointer), unnamedMessage})
	}
	if len(keys) == 0 {
		return
	}
	// An example is made (a decode, outside the lock) only when a group is new.
	b.mu.Lock()
	m := b.routes[route]
	fresh := false
	for _, k := range keys {
		if m[k] == nil {
			fresh = true
			break
		}
	}
	b.mu.Unlock()
	example := ""
	if fresh && len(d.Body) <= maxExampleSource {
		example = quarantine.Example(d.Body)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if m = b.routes[route]; m == nil {
		m = map[groupID]*driftEntry{}
		b.routes[route] = m
	}
	for _, k := range keys {
		e := m[k]
		if e == nil {
			if len(m) >= 2*quarantine.MaxGroups {
				o := quarantine.Other(quarantine.Group{Kind: k.kind})
				k = groupID{o.Kind, o.Pointer, o.Message}
			}
			if e = m[k]; e == nil {
				e = &driftEntry{delta: quarantine.Group{Kind: k.kind, Pointer: k.pointer, Message: k.message, Example: example},
					metric: b.metric(route, k.kind, k.pointer)}
				m[k] = e
			}
		}
		if e.delta.Count == 0 {
			e.delta.First = now
		}
		e.delta.Count++
		e.delta.Last = now
		e.metric.Inc()
	}
}

func containsKey[K comparable](ks []K, k K) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// metric returns route's drift counter for pointer, "(other)" past driftMetricPointers (b.mu held).
func (b *driftBuffer) metric(route, kind, pointer string) prometheus.Counter {
	ps := b.metrics[route]
	if ps == nil {
		ps = map[string]bool{}
		b.metrics[route] = ps
	}
	if !ps[pointer] {
		if len(ps) >= driftMetricPointers {
			pointer = quarantine.OtherPointer
		} else {
			ps[pointer] = true
		}
	}
	return schemaDrift.WithLabelValues(route, kind, pointer)
}

// take returns each route's counts since the last call, and starts them again.
func (b *driftBuffer) take() map[string][]quarantine.Group {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]quarantine.Group{}
	for route, m := range b.routes {
		for _, e := range m {
			if e.delta.Count == 0 {
				continue
			}
			out[route] = append(out[route], e.delta)
			e.delta = quarantine.Group{Kind: e.delta.Kind, Pointer: e.delta.Pointer, Message: e.delta.Message}
		}
	}
	return out
}

// forget drops route's groups and their counts not yet flushed.
func (b *driftBuffer) forget(route string) {
	b.mu.Lock()
	delete(b.routes, route)
	b.mu.Unlock()
}

// pending returns route's counts not yet flushed.
func (b *driftBuffer) pending(route string) []quarantine.Group {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []quarantine.Group
	for _, e := range b.routes[route] {
		if e.delta.Count > 0 {
			out = append(out, e.delta)
		}
	}
	return out
}

// putBack adds counts a failed flush could not write to the next flush.
func (b *driftBuffer) putBack(route string, gs []quarantine.Group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.routes[route]
	if m == nil {
		return // forgotten meanwhile
	}
	for _, d := range gs {
		if e := m[groupID{d.Kind, d.Pointer, d.Message}]; e != nil {
			quarantine.Merge(&e.delta, d)
		}
	}
}

// flushDrift writes the gathered drift counts to the store.
func (g *Gateway) flushDrift(ctx context.Context) {
	for route, gs := range g.drift.take() {
		if err := g.stores.Quarantine.AddDrift(ctx, route, gs); err != nil {
			g.logger.Warn("cannot write the drift report; kept for the next flush", zap.String("route", route), zap.Error(err))
			g.drift.putBack(route, gs)
		}
	}
}

// Drift returns route's drift report: the store's, with this instance's counts not yet
// flushed added.
func (g *Gateway) Drift(ctx context.Context, route string) ([]quarantine.Group, error) {
	gs, err := g.stores.Quarantine.Drift(ctx, route)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]int, len(gs))
	for i, x := range gs {
		byKey[quarantine.GroupKey(x.Kind, x.Pointer, x.Message)] = i
	}
	for _, d := range g.drift.pending(route) {
		if i, ok := byKey[quarantine.GroupKey(d.Kind, d.Pointer, d.Message)]; ok {
			quarantine.Merge(&gs[i], d)
		} else {
			gs = append(gs, d)
		}
	}
	quarantine.SortGroups(gs)
	return gs, nil
}

// quarantineTasks runs the drift flusher, the retention of the quarantines and the
// console's queue sampler (sampleEvery) until the gateway stops (a last drift flush then).
type quarantineTasks struct{ life lifecycle.Base }

func (g *Gateway) startQuarantineTasks() {
	if !g.qtasks.life.Start() {
		return
	}
	g.qtasks.life.Go(func(ctx context.Context) {
		flush, trim, sample := time.NewTicker(driftFlush), time.NewTicker(trimEvery), time.NewTicker(sampleEvery)
		defer flush.Stop()
		defer trim.Stop()
		defer sample.Stop()
		g.sampleQueues(ctx)
		for {
			select {
			case <-sample.C:
				g.sampleQueues(ctx)
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				g.flushDrift(fctx)
				cancel()
				return
			case <-flush.C:
				fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				g.flushDrift(fctx)
				cancel()
			case <-trim.C:
				g.trimQuarantines(ctx)
			}
		}
	})
}

// trimQuarantines applies each quarantining route's retention.
func (g *Gateway) trimQuarantines(ctx context.Context) {
	g.mu.RLock()
	var rts []*Route
	for _, rt := range g.routes {
		if rt != nil && rt.onInvalid == OnInvalidQuarantine {
			rts = append(rts, rt)
		}
	}
	g.mu.RUnlock()
	for _, rt := range rts {
		n, err := g.stores.Quarantine.Trim(ctx, rt.name, rt.qlimits, time.Now())
		if err != nil {
			rt.logger.Warn("cannot apply the quarantine's retention", zap.String("route", rt.name), zap.Error(err))
			continue
		}
		if n > 0 {
			quarantineExpired.WithLabelValues(rt.name).Add(float64(n))
			rt.logger.Warn("quarantined requests expired: held longer than the retention, deleted unreleased", zap.String("route", rt.name),
				zap.Int("expired", n), zap.Duration("retention", rt.qlimits.WithDefaults().MaxAge))
		}
	}
}
