package gateway

import (
	"context"
	"sync"
	"time"

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
)

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

// driftBuffer gathers drift counts between two flushes to the store.
type driftBuffer struct {
	mu      sync.Mutex
	routes  map[string]map[string]*quarantine.Group // route -> group key -> counts since the last flush
	metrics map[string]map[string]bool              // route -> pointers labelled in schemaDrift
}

func newDriftBuffer() *driftBuffer {
	return &driftBuffer{routes: map[string]map[string]*quarantine.Group{}, metrics: map[string]map[string]bool{}}
}

// observe counts what one request of route showed. It runs on the request path: one lock,
// a map lookup per group; a group new since the last flush copies an example of the body.
func (b *driftBuffer) observe(route string, d receiver.Drift) {
	now := time.Now()
	type key struct{ kind, pointer, message string }
	var seen [8]key
	keys := seen[:0]
	var walk func(vs []problem.Violation)
	walk = func(vs []problem.Violation) {
		for _, v := range vs {
			if len(v.Errors) > 0 {
				walk(v.Errors)
				continue
			}
			k := key{quarantine.KindViolation, quarantine.Generalize(v.Pointer), v.Message}
			if len(keys) < 20 && !containsKey(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	walk(d.Violations)
	for _, p := range d.Unnamed {
		keys = append(keys, key{quarantine.KindUnnamed, p, unnamedMessage})
	}
	if len(keys) == 0 {
		return
	}
	example := ""
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.routes[route]
	if m == nil {
		m = map[string]*quarantine.Group{}
		b.routes[route] = m
	}
	for _, k := range keys {
		gk := quarantine.GroupKey(k.kind, k.pointer, k.message)
		g := m[gk]
		if g == nil {
			if len(m) >= 2*quarantine.MaxGroups {
				o := quarantine.Other(quarantine.Group{Kind: k.kind})
				gk = quarantine.GroupKey(o.Kind, o.Pointer, o.Message)
				if g = m[gk]; g == nil {
					g = &o
					g.First = now
					m[gk] = g
				}
			} else {
				if example == "" {
					example = quarantine.Example(d.Body)
				}
				g = &quarantine.Group{Kind: k.kind, Pointer: k.pointer, Message: k.message, First: now, Example: example}
				m[gk] = g
			}
		}
		g.Count++
		g.Last = now
		b.metric(route, k.kind, k.pointer).Inc()
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

// take returns the counts gathered since the last call, and forgets them.
func (b *driftBuffer) take() map[string]map[string]*quarantine.Group {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.routes
	b.routes = map[string]map[string]*quarantine.Group{}
	return out
}

// forget drops route's counts not yet flushed.
func (b *driftBuffer) forget(route string) {
	b.mu.Lock()
	delete(b.routes, route)
	b.mu.Unlock()
}

// pending returns a copy of route's counts not yet flushed.
func (b *driftBuffer) pending(route string) []quarantine.Group {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]quarantine.Group, 0, len(b.routes[route]))
	for _, g := range b.routes[route] {
		out = append(out, *g)
	}
	return out
}

// putBack merges counts a failed flush could not write into the buffer.
func (b *driftBuffer) putBack(route string, gs []quarantine.Group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.routes[route]
	if m == nil {
		m = map[string]*quarantine.Group{}
		b.routes[route] = m
	}
	for _, d := range gs {
		k := quarantine.GroupKey(d.Kind, d.Pointer, d.Message)
		if g := m[k]; g != nil {
			quarantine.Merge(g, d)
		} else if len(m) < 2*quarantine.MaxGroups {
			d := d
			m[k] = &d
		}
	}
}

// flushDrift writes the gathered drift counts to the store.
func (g *Gateway) flushDrift(ctx context.Context) {
	for route, m := range g.drift.take() {
		gs := make([]quarantine.Group, 0, len(m))
		for _, x := range m {
			gs = append(gs, *x)
		}
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

// quarantineTasks runs the drift flusher and the retention of the quarantines until the
// gateway stops (a last flush then).
type quarantineTasks struct{ life lifecycle.Base }

func (g *Gateway) startQuarantineTasks() {
	if !g.qtasks.life.Start() {
		return
	}
	g.qtasks.life.Go(func(ctx context.Context) {
		flush, trim := time.NewTicker(driftFlush), time.NewTicker(trimEvery)
		defer flush.Stop()
		defer trim.Stop()
		for {
			select {
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
				zap.Int("expired", n), zap.Duration("retention", limitsOf(rt.qlimits).MaxAge))
		}
	}
}

func limitsOf(l quarantine.Limits) quarantine.Limits {
	if l.MaxAge <= 0 {
		l.MaxAge = quarantine.DefaultMaxAge
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = quarantine.DefaultMaxBytes
	}
	return l
}
