package reqlog

import (
	"context"
	"sync"
)

// Memory is the request log of one instance, in memory: the embedded store's (one process
// serves the file). It survives config reloads, not restarts.
type Memory struct {
	mu     sync.RWMutex
	routes map[string]*ring
}

type ring struct {
	mu    sync.Mutex
	buf   []*Entry
	next  int
	full  bool
	limit int
}

// NewMemory returns an empty log.
func NewMemory() *Memory { return &Memory{routes: map[string]*ring{}} }

func (m *Memory) ring(route string) *ring {
	m.mu.RLock() // the request path: routes are created once, then only read
	r := m.routes[route]
	m.mu.RUnlock()
	if r != nil {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r = m.routes[route]
	if r == nil {
		r = &ring{limit: DefaultLimit, buf: make([]*Entry, DefaultLimit)}
		m.routes[route] = r
	}
	return r
}

// SetLimit implements Log: the latest records are kept.
func (m *Memory) SetLimit(route string, n int) {
	r := m.ring(route)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == r.limit || n <= 0 {
		return
	}
	old := r.ordered()
	if len(old) > n {
		old = old[:n]
	}
	r.buf, r.limit, r.next, r.full = make([]*Entry, n), n, 0, false
	for i := len(old) - 1; i >= 0; i-- {
		r.push(old[i])
	}
}

func (r *ring) push(e *Entry) {
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// ordered returns the entries newest first; r.mu held.
func (r *ring) ordered() []*Entry {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]*Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Add implements Log.
func (m *Memory) Add(e *Entry) {
	r := m.ring(e.Route)
	r.mu.Lock()
	r.push(e)
	r.mu.Unlock()
}

// List implements Log.
func (m *Memory) List(ctx context.Context, route string, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	r := m.ring(route)
	r.mu.Lock()
	es := r.ordered()
	r.mu.Unlock()
	var out []Record
	for _, e := range es {
		if len(out) == f.Limit {
			break
		}
		if f.Match(&e.Record) {
			out = append(out, e.Materialize())
		}
	}
	return out, nil
}

// Get implements Log.
func (m *Memory) Get(ctx context.Context, route, id string) (Record, error) {
	r := m.ring(route)
	r.mu.Lock()
	es := r.ordered()
	r.mu.Unlock()
	for _, e := range es {
		if e.ID == id {
			return e.Materialize(), nil
		}
	}
	return Record{}, ErrNotFound
}
