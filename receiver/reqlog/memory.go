package reqlog

import (
	"context"
	"sync"
)

// Memory is the request log of one instance, in memory: the embedded store's (one process
// serves the file). It survives config reloads, not restarts.
//
// Each route keeps its latest records (SetLimit), and the whole log, every route together,
// at most its byte budget (SetMaxBytes, default DefaultMaxBytes): when a new record takes
// it over, the oldest records are dropped first, whichever route they belong to. A record
// counts what it holds on to (Entry.cost): the kept body, the request's headers, its URI,
// problem and violations, and a fixed overhead.
type Memory struct {
	mu     sync.Mutex
	routes map[string]*ring
	order  fifo   // every record held, in arrival order across routes
	seq    uint64 // the last record's number
	bytes  int64  // what the records held cost
	max    int64
}

// ring is one route's records. Records leave it oldest first (pushed out by the route's
// limit, or dropped for the budget), so gone, the number of the last one to leave, tells
// which of its records are still held.
type ring struct {
	buf   []*Entry
	head  int // the oldest
	n     int
	limit int
	gone  uint64
}

// NewMemory returns an empty log with the default budget.
func NewMemory() *Memory { return &Memory{routes: map[string]*ring{}, max: DefaultMaxBytes} }

// ring returns route's records, made on first use (m.mu held).
func (m *Memory) ring(route string) *ring {
	r := m.routes[route]
	if r == nil {
		r = &ring{limit: DefaultLimit, buf: make([]*Entry, DefaultLimit)}
		m.routes[route] = r
	}
	return r
}

// SetLimit implements Log: the latest records are kept.
func (m *Memory) SetLimit(route string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.ring(route)
	if n == r.limit || n <= 0 {
		return
	}
	old := r.ordered()
	if len(old) > n {
		for _, e := range old[n:] {
			m.left(r, e)
		}
		old = old[:n]
	}
	r.buf, r.limit, r.head, r.n = make([]*Entry, n), n, 0, 0
	for i := len(old) - 1; i >= 0; i-- {
		r.push(old[i])
	}
}

// SetMaxBytes implements Log. A smaller budget drops the oldest records at the next Add.
func (m *Memory) SetMaxBytes(n int64) {
	if n <= 0 {
		n = DefaultMaxBytes
	}
	m.mu.Lock()
	m.max = n
	m.mu.Unlock()
}

// left accounts for e leaving r (m.mu held).
func (m *Memory) left(r *ring, e *Entry) {
	m.bytes -= e.size
	r.gone = max(r.gone, e.seq)
	m.order.dead++
}

// push adds e as the newest record, and returns the oldest one it pushed out.
func (r *ring) push(e *Entry) (out *Entry) {
	if r.n == len(r.buf) {
		out = r.buf[r.head]
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
		return out
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
	return nil
}

// dropOldest removes the oldest record.
func (r *ring) dropOldest() *Entry {
	e := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return e
}

// ordered returns the entries newest first.
func (r *ring) ordered() []*Entry {
	out := make([]*Entry, 0, r.n)
	for i := r.n - 1; i >= 0; i-- {
		out = append(out, r.buf[(r.head+i)%len(r.buf)])
	}
	return out
}

// Add implements Log.
func (m *Memory) Add(e *Entry) {
	size := e.cost() // outside the lock: reads only e
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.ring(e.Route)
	m.seq++
	e.seq, e.size = m.seq, size
	if out := r.push(e); out != nil {
		m.left(r, out)
	}
	m.bytes += size
	m.order.push(slot{seq: e.seq, r: r})
	// Over budget: drop the oldest records, of any route, keeping at least the new one.
	for m.bytes > m.max && m.order.len() > 1 {
		s := m.order.pop()
		if s.seq <= s.r.gone {
			m.order.dead-- // it had left already
			continue
		}
		old := s.r.dropOldest() // the ring's oldest is this one: records leave in order
		m.bytes -= old.size
		s.r.gone = s.seq
	}
	m.order.compact()
}

// List implements Log.
func (m *Memory) List(ctx context.Context, route string, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	m.mu.Lock()
	es := m.ring(route).ordered()
	m.mu.Unlock()
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
	m.mu.Lock()
	es := m.ring(route).ordered()
	m.mu.Unlock()
	for _, e := range es {
		if e.ID == id {
			return e.Materialize(), nil
		}
	}
	return Record{}, ErrNotFound
}

// slot is one record in the arrival order: its number and its route (not the record,
// which a slot must not keep alive once it left).
type slot struct {
	seq uint64
	r   *ring
}

// fifo is a queue of slots on a slice, oldest first. dead counts the slots of records
// that left their ring (by their route's limit) while still in the queue.
type fifo struct {
	s    []slot
	head int
	dead int
}

func (q *fifo) push(s slot) { q.s = append(q.s, s) }
func (q *fifo) len() int    { return len(q.s) - q.head }
func (q *fifo) pop() slot {
	s := q.s[q.head]
	q.s[q.head] = slot{}
	q.head++
	return s
}

// compact pops leading dead slots, and rewrites the queue without the dead ones and the
// popped prefix once those are most of it, so it stays proportional to the records held
// (amortized O(1) per Add).
func (q *fifo) compact() {
	for q.len() > 0 && q.s[q.head].seq <= q.s[q.head].r.gone {
		q.pop()
		q.dead--
	}
	if len(q.s) < 1024 || q.head+q.dead < len(q.s)/2 {
		return
	}
	live := q.s[:0]
	for _, s := range q.s[q.head:] {
		if s.seq > s.r.gone {
			live = append(live, s)
		}
	}
	clear(q.s[len(live):])
	q.s, q.head, q.dead = live, 0, 0
}
