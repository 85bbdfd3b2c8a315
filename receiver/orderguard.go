package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/order"
)

// OrderSpec configures the stale-event guard: per record (Keys), the newest order value
// (Value) handed on is remembered; an event whose value is older is answered 200 with
// Webhook-Stale: true and not handed on.
type OrderSpec struct {
	// Kind is how values compare: order.Time (RFC 3339 with offsets; the default),
	// order.Int or order.String.
	Kind order.Kind
	// Value is the order value's source, as for event ids (json:/pointer or header:Name).
	Value string
	// Keys are the record key's sources; several make a composite key. Required.
	Keys []string
	// Window is how long a record's newest value is kept. Default: the dedupe window.
	Window time.Duration
	// MaxAhead bounds how far in the future (of this gateway's clock) a Time value may be
	// and still be recorded. An event beyond it is handed on, not recorded, and ends as
	// problem.ReasonOrderAhead: a wrong date (2262) or a sender's clock far ahead would otherwise
	// make every later event of its record stale. Default DefaultOrderMaxAhead.
	MaxAhead time.Duration
}

// DefaultOrderMaxAhead is the default OrderSpec.MaxAhead: more than NTP-synchronised
// clocks drift apart, and the longest a value from a clock that runs fast can hold back a
// record's later events.
const DefaultOrderMaxAhead = time.Minute

// ParseOrderSource splits "time:json:/timestamp" into its kind and source; a source
// without a kind compares as a time.
func ParseOrderSource(s string) (order.Kind, string) {
	for _, k := range []order.Kind{order.Time, order.Int, order.String} {
		if rest, ok := strings.CutPrefix(s, string(k)+":"); ok {
			return k, rest
		}
	}
	return order.Time, s
}

// ParseOrderBy reads the words of the Caddyfile's `order_by off` or `order_by
// [time:|int:|string:]<source> [key <source>…]`: the value source and the record key's
// sources; the key may be left out on a route with a preset (it keeps the preset's).
func ParseOrderBy(words []string, preset bool) (string, []string, error) {
	if len(words) == 0 {
		return "", nil, errors.New("order_by [time:|int:|string:]<source> key <source>… (or order_by off)")
	}
	value := words[0]
	switch {
	case value == "off" && len(words) > 1:
		return "", nil, errors.New("order_by off takes no other argument")
	case value == "off":
		return value, nil, nil
	case len(words) > 1 && words[1] != "key":
		return "", nil, fmt.Errorf("order_by %s: expected `key <source>…`, got %q", value, words[1])
	case len(words) == 2:
		return "", nil, fmt.Errorf("order_by %s key: name at least one source of the record key", value)
	case len(words) == 1 && !preset:
		return "", nil, fmt.Errorf("order_by %s: add `key <source>…`, the record whose events are ordered", value)
	case len(words) == 1:
		return value, nil, nil
	}
	return value, words[2:], nil
}

type orderGuard struct {
	claimTTL time.Duration
	maxAhead time.Duration
	kind     order.Kind
	value    idSource
	keys     *eventIDSpec
	window   time.Duration
	store    order.Store
	scope    string
}

func newOrderGuard(spec OrderSpec, store order.Store, scope string, window time.Duration) (*orderGuard, error) {
	if store == nil {
		return nil, errors.New("order_by needs a store")
	}
	if len(spec.Keys) == 0 {
		return nil, errors.New("order_by needs `key <source>…`: the record whose events are ordered")
	}
	if !spec.Kind.Valid() {
		return nil, fmt.Errorf("order_by: unknown kind %q (time, int or string)", spec.Kind)
	}
	vs, err := newEventIDSpec([]string{spec.Value})
	if err != nil {
		return nil, fmt.Errorf("order_by: %w", err)
	}
	if vs.sources[0].kind == idBodySHA256 {
		return nil, errors.New("order_by: the order value must come from json:/pointer or header:Name")
	}
	ks, err := newEventIDSpec(spec.Keys)
	if err != nil {
		return nil, fmt.Errorf("order_by key: %w", err)
	}
	g := &orderGuard{kind: spec.Kind, value: vs.sources[0], keys: ks, window: spec.Window, store: store, scope: scope,
		claimTTL: OrderClaimTTL}
	if g.window <= 0 {
		g.window = window
	}
	if g.kind == "" {
		g.kind = order.Time
	}
	if spec.MaxAhead > 0 && g.kind != order.Time {
		return nil, fmt.Errorf("order_max_ahead bounds time: order values; this guard compares %s values", g.kind)
	}
	if g.maxAhead = spec.MaxAhead; g.maxAhead <= 0 {
		g.maxAhead = DefaultOrderMaxAhead
	}
	return g, nil
}

// Timing of the guard's claims.
const (
	// OrderClaimTTL bounds how long one event's hand-off holds its record: a gateway that
	// dies while handing on blocks the record's other events for at most this long.
	OrderClaimTTL = 30 * time.Second
	// OrderWait is how long an event whose record has another event being handed on
	// waits for it (then it is compared with the newest, and passes or is stale) before
	// it is answered 409.
	OrderWait = 2 * time.Second
)

// claim claims key, waiting up to OrderWait while another event of the record is being
// handed on, so a burst of events of one record passes in turn (each compared with the
// one before) instead of being refused.
func (g *orderGuard) claim(ctx context.Context, key, value string) (order.Verdict, string, error) {
	deadline := time.Now().Add(OrderWait)
	pause := 2 * time.Millisecond
	for {
		v, tok, err := g.store.Claim(ctx, key, value, g.claimTTL)
		if err != nil || v != order.Busy || time.Now().After(deadline) {
			return v, tok, err
		}
		select {
		case <-ctx.Done():
			return order.Busy, "", nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// settle retries a release or a commit that failed (the store was away) in the
// background for up to a minute.
func (g *orderGuard) settle(op func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := op(ctx)
	cancel()
	if err == nil {
		return
	}
	go func() {
		deadline := time.Now().Add(time.Minute)
		for pause := 200 * time.Millisecond; time.Now().Before(deadline); pause = min(2*pause, 5*time.Second) {
			time.Sleep(pause)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := op(ctx)
			cancel()
			if err == nil {
				return
			}
		}
	}()
}

func (g *orderGuard) needsJSON() bool { return g.value.kind == idJSON || g.keys.needsJSON() }

// pointer is the source as a JSON pointer for problem details ("" for a header).
func (src *idSource) pointer() string {
	if src.kind != idJSON {
		return ""
	}
	return strings.TrimPrefix(src.text, "json:")
}

// orderOf is what the guard found in one request.
type orderOf struct {
	key   string // the record key, scoped (the store's key)
	value string // encoded
	raw   string // as received
	ahead bool   // a Time further in the future than maxAhead: handed on, not recorded
}

// recordKey is the record key without its scope (as operators see it).
func (g *orderGuard) recordKey(o orderOf) string { return o.key[len(g.scope)+1:] }

// extract returns what the guard needs of the request, or the 400 problem.
func (g *orderGuard) extract(r *http.Request, body []byte, doc any) (orderOf, *Problem) {
	raw, ok := g.value.part(r, body, doc)
	if !ok || raw == "" {
		p := newProblem(http.StatusBadRequest, problem.ReasonOrderValue, "Bad Request",
			"the order value ("+g.value.text+") is missing or empty in this request")
		if ptr := g.value.pointer(); ptr != "" {
			p.Errors = []Violation{{Pointer: ptr, Message: "missing: the order value"}}
		}
		return orderOf{}, p
	}
	o := orderOf{raw: raw}
	var err error
	if g.kind == order.Time {
		var t time.Time
		if t, err = order.ParseTime(raw); err == nil {
			o.value, o.ahead = order.EncodeTime(t), t.After(time.Now().Add(g.maxAhead))
		}
	} else {
		o.value, err = order.Encode(g.kind, raw)
	}
	if err != nil {
		p := newProblem(http.StatusBadRequest, problem.ReasonOrderValue, "Bad Request",
			"the order value ("+g.value.text+") cannot be compared as "+string(g.kind)+": "+err.Error())
		if ptr := g.value.pointer(); ptr != "" {
			p.Errors = []Violation{{Pointer: ptr, Message: err.Error()}}
		}
		return orderOf{}, p
	}
	key, ok := g.keys.compute(r, body, doc)
	if !ok {
		return orderOf{}, newProblem(http.StatusBadRequest, problem.ReasonOrderValue, "Bad Request",
			"the record key of the order guard ("+g.keys.describe()+") is missing or empty in this request")
	}
	o.key = g.scope + ":" + key
	return o, nil
}

func writeStale(w http.ResponseWriter, id string) { writeMarked(w, id, "Webhook-Stale", "stale") }

// guard wraps next: an event older than its record's newest is answered stale; one whose
// record has another event being handed on gets 409; otherwise it is handed on, and its
// value recorded once the hand-off answered 2xx (unless it is too far ahead: then the
// claim is released and the outcome is problem.ReasonOrderAhead).
func (rc *Receiver) guard(next Next, o orderOf) Next {
	g := rc.order
	key, value := o.key, o.value
	return func(w http.ResponseWriter, r *http.Request, ev *Event) error {
		t0 := time.Now()
		verdict, tok, err := g.claim(r.Context(), key, value)
		ev.storeTime += time.Since(t0)
		if err != nil {
			if rc.onErr != nil {
				rc.onErr(fmt.Errorf("claiming the order of event %q: %w", ev.ID, err))
			}
			if rc.accept {
				return next(w, r, ev)
			}
			newProblem(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
				"the order store cannot be reached; retry later").WithHeader("Retry-After", retryAfterStore).Write(w)
			ev.Outcome = problem.ReasonStoreUnavailable
			return nil
		}
		switch verdict {
		case order.Stale:
			writeStale(w, ev.ID)
			ev.Outcome = problem.ReasonStale
			return nil
		case order.Busy:
			newProblem(http.StatusConflict, problem.ReasonOrderInFlight, "Conflict",
				"another event for this record is being handed on right now; retry later").WithHeader("Retry-After", retryAfterInFlight).Write(w)
			ev.Outcome = problem.ReasonOrderInFlight
			return nil
		}
		sw := &statusWriter{ResponseWriter: w}
		done := false
		defer func() {
			if !done {
				g.settle(func(ctx context.Context) error { return g.store.Release(ctx, key, tok) })
			}
		}()
		err = callNext(next, sw, r, ev) // an aborted answer was handed on: recorded
		if st := sw.statusOr200(); err == nil && st >= 200 && st < 300 && o.ahead {
			// Handed on in turn with the record's other events, but not recorded: the
			// deferred release ends the claim.
			if out := ev.outcome(); out == problem.ReasonAccepted || out == problem.ReasonQueued {
				ev.Outcome = problem.ReasonOrderAhead
			}
		} else if err == nil && st >= 200 && st < 300 {
			t1 := time.Now()
			cerr := g.store.Commit(context.WithoutCancel(r.Context()), key, value, tok, g.window)
			ev.storeTime += time.Since(t1)
			if cerr != nil {
				if rc.onErr != nil {
					rc.onErr(fmt.Errorf("recording the order of event %q: %w", ev.ID, cerr))
				}
				// Keep trying in the background, so the record is not blocked until the
				// claim lapses once the store is back.
				g.settle(func(ctx context.Context) error { return g.store.Commit(ctx, key, value, tok, g.window) })
			}
			done = true
		}
		return err
	}
}

// Errors of the operators' calls on a route's guard.
var (
	// ErrNoOrderGuard: the route has no stale-event guard.
	ErrNoOrderGuard = errors.New("the route has no stale-event guard (order_by)")
	// ErrRecordKey: the record key given cannot be one.
	ErrRecordKey = errors.New("bad record key")
)

// MaxRecordKey is the longest record key an operator can name: the guard keeps longer
// values as "sha256:" and their digest, and composite keys are 64 hex digits.
const MaxRecordKey = maxIDLen

// OrderState is a record's newest order value, as operators see it.
type OrderState struct {
	// Kind is how the route's values compare (time, int or string).
	Kind order.Kind `json:"kind"`
	// Key is the record key, as the request log shows it (order_key).
	Key string `json:"record_key"`
	// Recorded tells whether a newest value is kept for the record.
	Recorded bool `json:"recorded"`
	// Newest is that value: a time in RFC 3339 (UTC), an integer or the string.
	Newest string `json:"value,omitempty"`
	// Expires is when it is forgotten (the end of order_window), if it is kept.
	Expires *time.Time `json:"expires,omitempty"`
}

func (rc *Receiver) orderKey(key string) (string, error) {
	if rc.order == nil {
		return "", ErrNoOrderGuard
	}
	if key == "" || len(key) > MaxRecordKey {
		return "", fmt.Errorf("%w: a record key is 1 to %d characters (the order_key of a request in the request log)", ErrRecordKey, MaxRecordKey)
	}
	return rc.order.scope + ":" + key, nil
}

// OrderRecord returns the newest order value kept for the record key. Errors: ErrNoOrderGuard,
// a key that cannot be one, or the store's (order.ErrUnavailable).
func (rc *Receiver) OrderRecord(ctx context.Context, key string) (OrderState, error) {
	st, _, err := rc.orderRecord(ctx, key)
	return st, err
}

// orderRecord is OrderRecord, and the newest value encoded ("" when none is kept).
func (rc *Receiver) orderRecord(ctx context.Context, key string) (OrderState, string, error) {
	k, err := rc.orderKey(key)
	if err != nil {
		return OrderState{}, "", err
	}
	st := OrderState{Kind: rc.order.kind, Key: key}
	rec, found, err := rc.order.store.Get(ctx, k)
	if err != nil {
		return OrderState{}, "", fmt.Errorf("reading the order of record %q: %w", key, err)
	}
	if !found {
		return st, "", nil
	}
	if st.Newest, err = order.Decode(rc.order.kind, rec.Value); err != nil {
		return OrderState{}, "", fmt.Errorf("the order of record %q: %w", key, err)
	}
	st.Recorded = true
	if !rec.Expires.IsZero() {
		exp := rec.Expires.UTC()
		st.Expires = &exp
	}
	return st, rec.Value, nil
}

// ClearOrder forgets the record's newest order value (an operator's reset); found tells
// whether one was kept.
func (rc *Receiver) ClearOrder(ctx context.Context, key string) (bool, error) {
	k, err := rc.orderKey(key)
	if err != nil {
		return false, err
	}
	found, err := rc.order.store.Clear(ctx, k)
	if err != nil {
		return false, fmt.Errorf("clearing the order of record %q: %w", key, err)
	}
	return found, nil
}

// OrderCompare tells how raw, an order value as received for the record key, compares with
// the record's newest: its text as the record's would be shown, and older when a newer one
// is recorded (handing it on would move the backend's state backwards).
func (rc *Receiver) OrderCompare(ctx context.Context, key, raw string) (value string, st OrderState, older bool, err error) {
	if rc.order == nil {
		return "", OrderState{}, false, ErrNoOrderGuard
	}
	enc, err := order.Encode(rc.order.kind, raw)
	if err != nil {
		return "", OrderState{}, false, err
	}
	if value, err = order.Decode(rc.order.kind, enc); err != nil {
		return "", OrderState{}, false, err
	}
	st, newest, err := rc.orderRecord(ctx, key)
	if err != nil {
		return "", OrderState{}, false, err
	}
	return value, st, newest > enc, nil
}
