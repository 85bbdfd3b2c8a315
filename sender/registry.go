package sender

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// Registry holds the endpoints that deliveries go to: those of the config, the internal
// targets of inbound `mode async` routes, and anything added at run time. It is the one
// list the publisher matches, the dispatcher runs workers for and the admin API shows. It is
// safe for concurrent use; a dispatcher watching it starts and stops an endpoint's workers
// as the endpoint is added or removed, with no config reload.
//
// Matching a published type does not scan every endpoint: patterns are indexed by their
// exact text (no wildcard) or by the literal prefix before their first wildcard, so a
// publish looks up the type itself and each of its prefixes, and tests only the patterns
// found there. 10,000 subscriptions of which 10 match cost about what 10 do.
type Registry struct {
	wmu      sync.Mutex // serializes changes with their notifications, so watchers see them in order
	mu       sync.RWMutex
	byName   map[string]*Endpoint
	order    []string // insertion order, for stable listings
	nextSeq  uint64
	exact    map[string][]*Endpoint // pattern without wildcards -> endpoints
	prefix   map[string][]pattern   // literal prefix of a wildcard pattern -> patterns
	all      []*Endpoint            // endpoints without patterns: every event
	watchers map[int]func(Change)
	nextID   int
}

// pattern is one wildcard event pattern of an endpoint.
type pattern struct {
	glob string
	e    *Endpoint
}

// Change is one addition to or removal from a registry, as its watchers see it.
type Change struct {
	// Added is the endpoint added, or nil.
	Added *Endpoint
	// Removed is the name of the endpoint removed, or "".
	Removed string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*Endpoint{}, exact: map[string][]*Endpoint{},
		prefix: map[string][]pattern{}, watchers: map[int]func(Change){}}
}

// literalPrefix is the part of a path.Match pattern before its first special character,
// and whether the pattern has one.
func literalPrefix(p string) (string, bool) {
	if i := strings.IndexAny(p, `*?[\`); i >= 0 {
		return p[:i], true
	}
	return p, false
}

func (g *Registry) index(e *Endpoint) {
	if e.Inbound {
		return
	}
	if len(e.Events) == 0 {
		g.all = append(g.all, e)
		return
	}
	for _, p := range e.Events {
		if lit, glob := literalPrefix(p); glob {
			g.prefix[lit] = append(g.prefix[lit], pattern{p, e})
		} else {
			g.exact[p] = append(g.exact[p], e)
		}
	}
}

func without[T any](s []T, drop func(T) bool) []T {
	out := s[:0:0]
	for _, v := range s {
		if !drop(v) {
			out = append(out, v)
		}
	}
	return out
}

func (g *Registry) unindex(e *Endpoint) {
	if e.Inbound {
		return
	}
	is := func(x *Endpoint) bool { return x == e }
	if len(e.Events) == 0 {
		g.all = without(g.all, is)
		return
	}
	for _, p := range e.Events {
		if lit, glob := literalPrefix(p); glob {
			if g.prefix[lit] = without(g.prefix[lit], func(x pattern) bool { return x.e == e }); len(g.prefix[lit]) == 0 {
				delete(g.prefix, lit)
			}
		} else if g.exact[p] = without(g.exact[p], is); len(g.exact[p]) == 0 {
			delete(g.exact, p)
		}
	}
}

// Add prepares e (see Endpoint.Prepare) and adds it. A name already taken is an error.
func (g *Registry) Add(e *Endpoint) error {
	if err := e.Prepare(); err != nil {
		return err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	if _, dup := g.byName[e.Name]; dup {
		g.mu.Unlock()
		return fmt.Errorf("endpoint %s is defined twice", e.Name)
	}
	g.byName[e.Name] = e
	g.order = append(g.order, e.Name)
	e.seq = g.nextSeq
	g.nextSeq++
	g.index(e)
	ws := g.watchersLocked()
	g.mu.Unlock()
	for _, w := range ws {
		w(Change{Added: e})
	}
	return nil
}

// Remove removes the named endpoint and reports whether it was there. Its deliveries stay
// in the queue; a watching dispatcher stops its workers.
func (g *Registry) Remove(name string) bool {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	e, ok := g.byName[name]
	if !ok {
		g.mu.Unlock()
		return false
	}
	g.unindex(e)
	delete(g.byName, name)
	for i, n := range g.order {
		if n == name {
			g.order = append(g.order[:i:i], g.order[i+1:]...)
			break
		}
	}
	ws := g.watchersLocked()
	g.mu.Unlock()
	for _, w := range ws {
		w(Change{Removed: name})
	}
	return true
}

// Put adds e, or replaces the endpoint of the same name (keeping its place in listings):
// watchers see the old one removed, then e added, so a dispatcher restarts its workers
// with the new settings while publishes never miss the name in between.
func (g *Registry) Put(e *Endpoint) error {
	if err := e.Prepare(); err != nil {
		return err
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	old, replacing := g.byName[e.Name]
	if replacing {
		g.unindex(old)
		e.seq = old.seq
	} else {
		g.order = append(g.order, e.Name)
		e.seq = g.nextSeq
		g.nextSeq++
	}
	g.byName[e.Name] = e
	g.index(e)
	ws := g.watchersLocked()
	g.mu.Unlock()
	for _, w := range ws {
		if replacing {
			w(Change{Removed: e.Name})
		}
		w(Change{Added: e})
	}
	return nil
}

// Get returns the named endpoint.
func (g *Registry) Get(name string) (*Endpoint, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	e, ok := g.byName[name]
	return e, ok
}

// List returns every endpoint, in the order they were added.
func (g *Registry) List() []*Endpoint {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*Endpoint, 0, len(g.order))
	for _, n := range g.order {
		out = append(out, g.byName[n])
	}
	return out
}

// Names returns every endpoint's name, in the order they were added.
func (g *Registry) Names() []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return append([]string(nil), g.order...)
}

// MatchEndpoints returns the endpoints whose event patterns take events of type typ, in
// the order they were added, using the index: the type's own entry, each of its prefixes'
// patterns, and the endpoints without patterns.
func (g *Registry) MatchEndpoints(typ string) []*Endpoint {
	g.mu.RLock()
	defer g.mu.RUnlock()
	// An endpoint with several patterns can be found more than once among the matched
	// ones, which are few: a scan of them dedupes without a map per publish. Endpoints
	// without patterns are never indexed by pattern, so they are appended as they are.
	var out []*Endpoint
	add := func(e *Endpoint) {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	for _, e := range g.exact[typ] {
		add(e)
	}
	if len(g.prefix) > 0 {
		for i := 0; i <= len(typ); i++ {
			for _, p := range g.prefix[typ[:i]] {
				if ok, _ := path.Match(p.glob, typ); ok {
					add(p.e)
				}
			}
		}
	}
	out = append(out, g.all...)
	slices.SortFunc(out, func(a, b *Endpoint) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Watch calls fn with every endpoint already in the registry (as additions), then with
// every later change, until the returned function is called. fn must not call back into the
// registry's writers.
func (g *Registry) Watch(fn func(Change)) (stop func()) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	id := g.nextID
	g.nextID++
	g.watchers[id] = fn
	present := make([]*Endpoint, 0, len(g.order))
	for _, n := range g.order {
		present = append(present, g.byName[n])
	}
	g.mu.Unlock()
	for _, e := range present {
		fn(Change{Added: e})
	}
	return func() {
		g.mu.Lock()
		delete(g.watchers, id)
		g.mu.Unlock()
	}
}

func (g *Registry) watchersLocked() []func(Change) {
	ws := make([]func(Change), 0, len(g.watchers))
	for _, w := range g.watchers {
		ws = append(ws, w)
	}
	return ws
}
