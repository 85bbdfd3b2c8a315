package subscription

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender"
	"go.uber.org/zap"
)

// Options configure a Manager.
type Options struct {
	// AllowPrivate lets subscriptions target loopback, private and other non-public
	// addresses. Only the operator sets it. Default false: such targets are refused when
	// created (literal addresses) and at every dial (names).
	AllowPrivate bool
	// Grace is how long a rotated-out secret keeps signing. Default 24h.
	Grace time.Duration
	// Logger receives load and sync failures. Default: none.
	Logger *zap.Logger
	// Max caps how many subscriptions can exist: every publish runs the filters of those
	// that match, so their number is part of what a publish costs. A create beyond it is
	// refused (422 too_many_subscriptions). Counted as this instance sees them, so
	// instances creating at the same moment may pass it by a few. Default
	// DefaultMaxSubscriptions.
	Max int
}

// DefaultMaxSubscriptions is Options.Max's default.
const DefaultMaxSubscriptions = 10_000

// Manager keeps a sender's registry in step with the subscription store: it loads every
// subscription at Start, applies each change made here at once and each change made by
// another instance as the store's watch reports it (within about a second on Redis), and
// offers the operations the API exposes.
type Manager struct {
	store Store
	snd   *sender.Sender
	opts  Options

	mu      sync.Mutex
	subs    map[string]Subscription // what the registry holds, by id
	stop    chan struct{}
	started bool
	stopped bool
	unwatch func()
	loader  sync.WaitGroup
}

// NewManager returns a manager of store's subscriptions for snd; nothing runs until Start.
func NewManager(store Store, snd *sender.Sender, opts Options) *Manager {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMaxSubscriptions
	}
	return &Manager{store: store, snd: snd, opts: opts, subs: map[string]Subscription{}, stop: make(chan struct{})}
}

// Start watches the store and loads every subscription into the registry. If the store
// is away it keeps trying in the background (Caddy starts anyway; subscriptions come when
// the store does).
func (m *Manager) Start() {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return
	}
	m.started = true
	m.mu.Unlock()
	unwatch := m.store.Watch(m.changed)
	m.mu.Lock()
	m.unwatch = unwatch
	m.mu.Unlock()
	if err := m.reload(); err != nil {
		m.opts.Logger.Warn("cannot load subscriptions yet; retrying", zap.Error(err))
		m.loader.Add(1)
		go func() {
			defer m.loader.Done()
			backoff := 200 * time.Millisecond
			for {
				select {
				case <-m.stop:
					return
				case <-time.After(backoff):
				}
				if err := m.reload(); err == nil {
					m.opts.Logger.Info("subscriptions loaded")
					return
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		}()
	}
}

// Stop stops watching. The registry keeps what it has (the sender stops on its own).
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stopped || !m.started {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	unwatch := m.unwatch
	close(m.stop)
	m.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	m.loader.Wait()
}

// changed applies what the store's watch reports.
func (m *Manager) changed(ids []string) {
	if ids == nil {
		if err := m.reload(); err != nil {
			m.opts.Logger.Warn("cannot reload subscriptions", zap.Error(err))
		}
		return
	}
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := m.store.Get(ctx, id)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
			m.forget(id)
		case err != nil:
			m.opts.Logger.Warn("cannot read a changed subscription", zap.String("subscription", id), zap.Error(err))
		default:
			m.apply(s)
		}
	}
}

// reload makes the registry hold exactly the store's subscriptions.
func (m *Manager) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := m.store.All(ctx)
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(all))
	for _, s := range all {
		present[s.ID] = true
		m.apply(s)
	}
	m.mu.Lock()
	var gone []string
	for id := range m.subs {
		if !present[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.forget(id)
	}
	return nil
}

// apply puts s in the registry unless it already holds that version.
func (m *Manager) apply(s Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.subs[s.ID]; ok && cur.Version >= s.Version {
		return
	}
	e, err := s.Endpoint(m.opts.AllowPrivate, time.Now())
	if err == nil {
		err = m.snd.Registry().Put(e)
	}
	if err != nil {
		m.opts.Logger.Error("a stored subscription cannot be used", zap.String("subscription", s.ID), zap.Error(err))
		return
	}
	m.subs[s.ID] = s
}

// forget removes a deleted subscription from the registry.
func (m *Manager) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[id]; ok {
		delete(m.subs, id)
		m.snd.Registry().Remove(id)
	}
}

// Create validates in, stores a new subscription durably (a secret is generated unless
// given) and adds it to the registry. The result holds the secret: the only time it is
// shown, besides a rotation.
func (m *Manager) Create(ctx context.Context, in Input) (Subscription, error) {
	now := time.Now().UTC()
	s := Subscription{ID: NewID(), Created: now, Updated: now, Version: 1}
	if err := in.apply(&s, true, m.opts.AllowPrivate); err != nil {
		return Subscription{}, err
	}
	if s.Secret == "" {
		s.Secret = NewSecret()
	}
	if _, err := s.Endpoint(true, now); err != nil {
		return Subscription{}, &InputError{Status: 422, Detail: err.Error()}
	}
	m.mu.Lock()
	n := len(m.subs)
	m.mu.Unlock()
	if n >= m.opts.Max {
		return Subscription{}, &InputError{Status: 422, Reason: problem.ReasonTooManySubscriptions,
			Detail: fmt.Sprintf("there are already %d subscriptions, the most this gateway allows (max_subscriptions); delete one first", n)}
	}
	if err := m.store.Put(ctx, s, 0); err != nil {
		return Subscription{}, err
	}
	m.apply(s)
	return s, nil
}

// Get returns a subscription as stored.
func (m *Manager) Get(ctx context.Context, id string) (Subscription, error) {
	if !IsID(id) {
		return Subscription{}, ErrNotFound
	}
	return m.store.Get(ctx, id)
}

// ListOptions select and page a listing.
type ListOptions struct {
	// Limit caps the page. Default 100, at most 1000.
	Limit int
	// After is the last id of the previous page.
	After string
	// Event keeps the subscriptions that would take events of this type (by their
	// patterns; filters are not evaluated).
	Event string
}

// List returns a page of subscriptions ordered by id (creation order), and the id to
// pass as After for the next page ("" on the last). It reads this instance's copy, which
// follows changes made elsewhere within the watch's delay.
func (m *Manager) List(o ListOptions) ([]Subscription, string) {
	if o.Limit <= 0 {
		o.Limit = 100
	}
	o.Limit = min(o.Limit, 1000)
	m.mu.Lock()
	ids := make([]string, 0, len(m.subs))
	for id := range m.subs {
		if id > o.After {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []Subscription
	next := ""
	for _, id := range ids {
		s := m.subs[id]
		if o.Event != "" {
			if e, ok := m.snd.Registry().Get(id); !ok || !e.Matches(o.Event) {
				continue
			}
		}
		if len(out) == o.Limit {
			next = out[len(out)-1].ID
			break
		}
		out = append(out, s)
	}
	m.mu.Unlock()
	return out, next
}

// Count returns how many subscriptions this instance holds.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// Update applies a change (absent fields stay as they are), with compare-and-set against
// concurrent changes.
func (m *Manager) Update(ctx context.Context, id string, in Input) (Subscription, error) {
	return m.modify(ctx, id, func(s *Subscription) error { return in.apply(s, false, m.opts.AllowPrivate) })
}

// Rotate gives a subscription a new secret, returned once; the old one keeps signing
// for grace (the default when 0), so receivers can switch without losing a delivery.
func (m *Manager) Rotate(ctx context.Context, id string, grace time.Duration) (Subscription, error) {
	if grace <= 0 {
		grace = m.opts.Grace
	}
	return m.modify(ctx, id, func(s *Subscription) error {
		now := time.Now().UTC()
		kept := []Retired{{Secret: s.Secret, Until: now.Add(grace)}}
		for _, r := range s.Retired {
			if r.Until.After(now) && len(kept) < 5 {
				kept = append(kept, r)
			}
		}
		s.Secret, s.Retired = NewSecret(), kept
		return nil
	})
}

func (m *Manager) modify(ctx context.Context, id string, change func(*Subscription) error) (Subscription, error) {
	if !IsID(id) {
		return Subscription{}, ErrNotFound
	}
	for range 10 {
		cur, err := m.store.Get(ctx, id)
		if err != nil {
			return Subscription{}, err
		}
		next := cur
		if err := change(&next); err != nil {
			return Subscription{}, err
		}
		next.Version, next.Updated = cur.Version+1, time.Now().UTC()
		if _, err := next.Endpoint(true, time.Now()); err != nil {
			return Subscription{}, &InputError{Status: 422, Detail: err.Error()}
		}
		err = m.store.Put(ctx, next, cur.Version)
		if errors.Is(err, ErrVersion) {
			continue
		}
		if err != nil {
			return Subscription{}, err
		}
		m.apply(next)
		return next, nil
	}
	return Subscription{}, fmt.Errorf("subscription %s: %w", id, ErrVersion)
}

// ErrNotDrained wraps the error of a delete whose subscription is gone but whose pending
// deliveries could not be dead-lettered (the store failed in between): they stay pending,
// with no endpoint to take them, until retried from the dead letters or requeued.
var ErrNotDrained = errors.New("subscription deleted, but its pending deliveries could not be dead-lettered")

// DeletedReason is the error recorded on the deliveries a deleted subscription leaves.
const DeletedReason = "subscription deleted"

// Delete removes a subscription: it stops its workers and dead-letters its pending
// deliveries with the error "subscription deleted" (they stay readable, and retryable if
// it is the wrong one), and returns how many.
func (m *Manager) Delete(ctx context.Context, id string) (int, error) {
	if !IsID(id) {
		return 0, ErrNotFound
	}
	found, err := m.store.Delete(ctx, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, ErrNotFound
	}
	m.forget(id)
	n, err := m.snd.Queue().Abandon(ctx, id, DeletedReason)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrNotDrained, err)
	}
	return n, nil
}
