package sender

import (
	"fmt"
	"sync"
)

// Registry holds the endpoints that deliveries go to: those of the config, the internal
// targets of inbound `mode async` routes, and anything added at run time. It is the one
// list the publisher matches, the dispatcher runs workers for and the admin API shows. It is
// safe for concurrent use; a dispatcher watching it starts and stops an endpoint's workers
// as the endpoint is added or removed, with no config reload.
type Registry struct {
	wmu      sync.Mutex // serializes changes with their notifications, so watchers see them in order
	mu       sync.RWMutex
	byName   map[string]*Endpoint
	order    []string // insertion order, for stable listings
	watchers map[int]func(Change)
	nextID   int
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
	return &Registry{byName: map[string]*Endpoint{}, watchers: map[int]func(Change){}}
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
	if _, ok := g.byName[name]; !ok {
		g.mu.Unlock()
		return false
	}
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

// Match returns the names of the endpoints that take published events of type typ (inbound
// async targets take none).
func (g *Registry) Match(typ string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []string
	for _, n := range g.order {
		if e := g.byName[n]; !e.Inbound && e.Matches(typ) {
			out = append(out, n)
		}
	}
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
