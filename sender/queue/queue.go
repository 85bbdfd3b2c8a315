// Package queue defines the durable delivery queue that outbound delivery and inbound
// `mode async` share, and the types it stores. Two implementations pass one conformance
// suite (queuetest): boltqueue (the embedded file) and redisqueue (shared by many
// instances).
//
// The model: an Event is stored once per Enqueue call and fanned out into one Delivery per
// endpoint. A Delivery is pending until a worker leases it; a lease hides it from other
// workers (on any instance) until the lease ends, so a worker that dies simply lets the
// lease lapse and another worker resumes the delivery. Finish records an attempt and moves
// the delivery to delivered, to a later retry, or to the dead letters, but only if the
// caller still holds the lease.
package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/storeerr"
)

// State is where a delivery stands.
type State string

// The states of a delivery.
const (
	// Pending deliveries wait for their next attempt (or are being attempted now).
	Pending State = "pending"
	// Delivered deliveries got a 2xx.
	Delivered State = "delivered"
	// Dead deliveries used up their retry schedule; they are kept until requeued.
	Dead State = "dead"
)

// Errors.
var (
	// ErrNotFound: no such delivery. It is storeerr.ErrNotFound, shared by every store.
	ErrNotFound = storeerr.ErrNotFound
	// ErrConflict: an event id (an Idempotency-Key) was reused with a different body.
	ErrConflict = errors.New("event id already used with a different body")
	// ErrUnavailable: the store cannot be reached right now. It is storeerr.ErrUnavailable,
	// shared by every store; the queue stores wrap it as "queue store unavailable".
	ErrUnavailable = storeerr.ErrUnavailable
	// ErrNotReplicated: the write reached the store's master but fewer replicas than
	// replicas_ack asks for within its timeout. The event is queued (it is delivered
	// unless the master is lost before a replica has it). Errors carrying it carry
	// ErrUnavailable too: the caller is told to retry.
	ErrNotReplicated = errors.New("too few replicas hold the write")
)

// Event is what was published (or received, in inbound async mode).
type Event struct {
	// ID is the event id, the same on every delivery and attempt (the webhook-id header).
	ID string `json:"id"`
	// Type is the event type, matched against endpoints' event patterns.
	Type string `json:"type"`
	// Body is the exact body to deliver.
	Body []byte `json:"body"`
	// Header holds extra headers to send with every attempt (inbound async keeps some of
	// the sender's headers here). Usually nil.
	Header http.Header `json:"header,omitempty"`
	// Created is when the event was accepted.
	Created time.Time `json:"created"`
	// TransformError is set on a delivery's event when its endpoint's transform failed at
	// enqueue: Body is then the original, and the worker runs the transform again before
	// each attempt. Empty otherwise.
	TransformError string `json:"transform_error,omitempty"`
	// Variants, read by Enqueue only (never stored as such), gives some endpoints their
	// own body and header (see Variant); endpoints not in it get Body and Header.
	Variants map[string]Variant `json:"-"`
	// Unique, read by Enqueue only, says no other body can carry ID: it is new (NewEventID)
	// or derived from the body (an inbound webhook's queue id). The store then keeps no
	// record of the body's hash to refuse a conflicting body (one write at a random key,
	// or one round trip, fewer per event); a repeat of the same event is still one event,
	// since its delivery exists. False (the default) for publishers' ids.
	Unique bool `json:"-"`
}

// Variant is what one endpoint's delivery stores of an event in place of the event's Body
// and Header: the output of the endpoint's transform, or, when the transform failed at
// enqueue, the original body with TransformError set.
type Variant struct {
	// Body replaces Event.Body for that endpoint (nil keeps Event.Body).
	Body []byte
	// Header replaces Event.Header for that endpoint (nil keeps Event.Header).
	Header http.Header
	// TransformError, when set, says why the endpoint's transform failed at enqueue.
	TransformError string
}

// For returns the event as endpoint's delivery stores it: its variant applied, without
// Variants.
func (e Event) For(endpoint string) Event {
	v, ok := e.Variants[endpoint]
	e.Variants = nil
	if !ok {
		return e
	}
	if v.Body != nil {
		e.Body = v.Body
	}
	if v.Header != nil {
		e.Header = v.Header
	}
	e.TransformError = v.TransformError
	return e
}

// BodyHash is the hex SHA-256 of the body, used to detect an id reused for another body.
func (e Event) BodyHash() string {
	s := sha256.Sum256(e.Body)
	return hex.EncodeToString(s[:])
}

// Attempt is one try at delivering.
type Attempt struct {
	// At is when the attempt started.
	At time.Time `json:"at"`
	// Status is the HTTP status answered, 0 when there was none.
	Status int `json:"status,omitempty"`
	// Latency is how long the attempt took.
	Latency time.Duration `json:"latency_ns"`
	// Error is why the attempt failed without a status (DNS, refused, timeout, blocked…).
	Error string `json:"error,omitempty"`
	// Response is the first bytes (at most MaxResponseKept) of a non-2xx answer's body, as
	// text, for diagnosis; empty for a 2xx (nothing to diagnose, and a delivered delivery
	// is kept for days) and when there was no answer.
	Response string `json:"response,omitempty"`
}

// MaxResponseKept is how many bytes of a non-2xx answer an attempt keeps.
const MaxResponseKept = 256

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	// ID identifies the delivery; it starts with the endpoint name and "~".
	ID string `json:"id"`
	// Endpoint is the endpoint's name.
	Endpoint string `json:"endpoint"`
	// Event is the event delivered.
	Event Event `json:"event"`
	// State is where the delivery stands.
	State State `json:"state"`
	// AttemptCount is the number of attempts made so far.
	AttemptCount int `json:"attempt_count"`
	// Attempts is the attempt history (the last 50), filled in by Get and List.
	Attempts []Attempt `json:"attempts,omitempty"`
	// NextAt is when a pending delivery is next due.
	NextAt time.Time `json:"next_at,omitzero"`
	// Created is when the delivery was queued.
	Created time.Time `json:"created"`
	// Lease identifies the lease held on a delivery returned by Lease.
	Lease string `json:"-"`
	// Probe is set on the one delivery Lease returns when an open breaker's cooldown has
	// passed: its attempt decides whether the breaker closes.
	Probe bool `json:"-"`
}

// Outcome is what Finish does with a delivery.
type Outcome int

// Outcomes.
const (
	// Done: delivered.
	Done Outcome = iota
	// Retry: pending again, due at Result.NextAt.
	Retry
	// Kill: dead-lettered.
	Kill
)

// Result is the outcome of one attempt on a leased delivery.
type Result struct {
	// Delivery is the leased delivery (its ID, Endpoint and Lease are used).
	Delivery Delivery
	// Attempt is recorded in the delivery's history.
	Attempt Attempt
	// Outcome says where the delivery goes next.
	Outcome Outcome
	// NextAt is the next due time when Outcome is Retry.
	NextAt time.Time
	// Keep, when positive, is how long a Done delivery stays readable instead of the
	// store's retention (a feed has its own).
	Keep time.Duration
	// Uncounted records the attempt in the history without counting it against the retry
	// schedule (a breaker's failed probe: the app is still down, not this event refused).
	Uncounted bool
	// Reshaped, set when the delivery's transform had failed at enqueue and ran at this
	// attempt, replaces the stored body and header with what was sent and clears the
	// TransformError, so the delivery shows what the endpoint received and verified.
	Reshaped *Variant
}

// EndpointStatus is what the store knows about one endpoint.
type EndpointStatus struct {
	// Disabled endpoints get no attempts until enabled again.
	Disabled bool `json:"disabled"`
	// Reason says why the endpoint was disabled.
	Reason string `json:"reason,omitempty"`
	// Pending, Delivered and Dead count deliveries by state (Delivered counts every
	// delivery ever delivered, not only those still kept).
	Pending   int64 `json:"pending"`
	Delivered int64 `json:"delivered"`
	Dead      int64 `json:"dead"`
	// Last is the endpoint's latest attempt, if any.
	Last *Attempt `json:"last_attempt,omitempty"`
	// Breaker is the endpoint's circuit breaker.
	Breaker Breaker `json:"breaker"`
	// OldestDue is the earliest next-attempt time among the endpoint's pending deliveries
	// (zero when none is pending); a leased delivery counts at its lease's end. When it is
	// in the past, now minus it is how long the most overdue delivery has waited for its
	// attempt: how far the endpoint is behind (a breaker or a disabled endpoint holds its
	// deliveries due, so it is then the age of the oldest).
	OldestDue time.Time `json:"oldest_due,omitzero"`
}

// Filter selects deliveries for List.
type Filter struct {
	// Endpoints to look at (required: the caller knows the configured endpoints).
	Endpoints []string
	// State, if set, keeps only deliveries in that state.
	State State
	// Limit caps the answer; newest first. Default 50.
	Limit int
}

// Store is a durable delivery queue.
type Store interface {
	Worker
	// Enqueue stores ev durably and queues one delivery per endpoint, due now; each
	// endpoint's delivery stores ev.For(endpoint) (its variant, the output of its
	// transform), and Resend later uses that. It is idempotent: a delivery of ev.ID to an
	// endpoint that already exists is not queued again (created counts the new ones). It
	// returns ErrConflict when ev.ID is already stored with a different body: the original
	// ev.Body, whatever the variants (a transform changed by a reload is no conflict).
	Enqueue(ctx context.Context, ev Event, endpoints []string) (created int, err error)
	// EnqueueBatch stores evs durably in one write (one transaction embedded, one
	// pipeline per 1,000 on Redis) and queues one delivery of each to endpoint, due now in
	// the order given: a feed's records are served in their publish order. Variants are
	// ignored (an event's TransformError is stored). Idempotent per
	// event like Enqueue; ErrConflict when an event id is stored with another body (then
	// no delivery of the batch is queued).
	EnqueueBatch(ctx context.Context, endpoint string, evs []Event) (created int, err error)
	// RequeueBatch makes the given dead or delivered deliveries pending again in one
	// write, as Requeue does, and returns how many; pending or unknown ones are skipped.
	RequeueBatch(ctx context.Context, ids []string) (int, error)
	// Get returns one delivery with its attempts, or ErrNotFound.
	Get(ctx context.Context, id string) (Delivery, error)
	// List returns deliveries with their attempts, newest first.
	List(ctx context.Context, f Filter) ([]Delivery, error)
	// Requeue makes a dead or delivered delivery pending again, due at its creation (so
	// due now, and back in its place among the pending ones: before what was queued after
	// it). A pending delivery is left alone. ErrNotFound if it is gone.
	Requeue(ctx context.Context, id string) error
	// RequeueDead requeues every dead delivery of endpoint and returns how many.
	RequeueDead(ctx context.Context, endpoint string) (int, error)
	// Resend queues a new delivery, due now, of the latest event of each event type that
	// was queued for endpoint, and returns how many.
	Resend(ctx context.Context, endpoint string) (int, error)
	// Status returns the endpoint's counts, last attempt and disabled state.
	Status(ctx context.Context, endpoint string) (EndpointStatus, error)
	// Statuses returns the status of each endpoint, in order, in as few store round
	// trips as it can (a metrics scrape with 10,000 subscriptions reads them all).
	Statuses(ctx context.Context, endpoints []string) ([]EndpointStatus, error)
	// SetRetention sets how long deliveries finished from now on stay readable once
	// delivered (Get, List). A store shared by several configs takes the latest value.
	SetRetention(d time.Duration)
	// Abandon dead-letters every pending delivery of endpoint, leased ones included (their
	// lease is void: a late Finish is ignored), recording an attempt whose error is
	// reason, and returns how many. It is for an endpoint that goes away (a deleted
	// subscription): its deliveries stay readable and can be requeued instead of
	// vanishing unseen.
	Abandon(ctx context.Context, endpoint, reason string) (int, error)
	// Abandoned names the endpoints Abandon was called for that still have dead letters
	// (deleted subscriptions), so their dead letters can be listed once no configuration
	// names them.
	Abandoned(ctx context.Context) ([]string, error)
}

// Worker is the part of a Store that delivery workers use: lease due deliveries, record
// their results, give back the ones not attempted, renew leases, and disable an endpoint
// that answered 410.
type Worker interface {
	// Lease returns up to max deliveries of endpoint that are due at now, and hides them
	// from every other Lease call until now+leaseFor. It returns none while the endpoint is
	// disabled. While the endpoint's breaker is open it returns a *BreakerOpenError, except
	// once the cooldown has passed: then the first caller (on any instance) gets at most one
	// delivery, the oldest due, marked Probe, and the others a *BreakerOpenError until
	// that probe's lease ends or the breaker is opened or closed again.
	Lease(ctx context.Context, endpoint string, max int, now time.Time, leaseFor time.Duration) ([]Delivery, error)
	// Finish records the attempts and outcomes of leased deliveries. A result whose lease
	// is no longer held (it lapsed and someone else leased the delivery) is ignored.
	Finish(ctx context.Context, results []Result) error
	// Release ends leases without an attempt, making the deliveries due again now.
	Release(ctx context.Context, leased []Delivery) error
	// Extend moves the end of leases still held to until (attempts in progress renew
	// their leases, so a lease can be short and a dead worker's deliveries come back soon).
	Extend(ctx context.Context, leased []Delivery, until time.Time) error
	// SetDisabled disables (with a reason) or enables an endpoint.
	SetDisabled(ctx context.Context, endpoint string, disabled bool, reason string) error
	// OpenBreaker stores b (State BreakerOpen) as endpoint's breaker, ending any probe
	// lease, and makes every pending delivery not leased due at its creation (b.Since
	// bounds it), so the probe is the oldest event and no retry time outruns the breaker.
	OpenBreaker(ctx context.Context, endpoint string, b Breaker) error
	// CloseBreaker closes endpoint's breaker at since. If it was open, every pending
	// delivery not due at its creation (a result written after the open), not leased and
	// not keep (the probe whose result is on its way), is made due at its creation, so the
	// backlog drains oldest first; it returns how many were.
	CloseBreaker(ctx context.Context, endpoint string, since time.Time, keep string) (rewound int, err error)
}

// UncertainWriter is implemented by a Store on which a write can take effect although the
// call returned an error: a reply lost on the network after the server ran the write, a
// wait for replicas that ran out after the primary wrote it. An async route that dedupes
// derives its queued events' ids from the webhook on such a store, so a sender's retry of
// a hand-off answered 503 finds the event already queued instead of queueing it twice. A
// store without it wrote nothing when a write failed; its events get fresh, time-ordered
// ids, which keep its indexes appending instead of writing at random keys.
type UncertainWriter interface {
	// UncertainWrites reports whether a failed Enqueue may still have queued its event.
	UncertainWrites() bool
}

// DefaultRetention is how long delivered deliveries are kept by default.
const DefaultRetention = 72 * time.Hour

// MaxAttemptsKept is how many attempts a delivery's history keeps.
const MaxAttemptsKept = 50

var endpointName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidEndpointName reports whether name can name an endpoint: 1 to 64 letters, digits,
// '_', '-' or '.', starting with a letter or digit.
func ValidEndpointName(name string) bool { return endpointName.MatchString(name) }

// DeliveryID is the id of the delivery of event id to endpoint: the same for the same
// pair, so Enqueue is idempotent.
//
// For ids made by NewEventID the delivery id reuses the event id's time-ordered
// characters, so the stores insert in key order (far fewer pages written per commit);
// other ids are hashed.
func DeliveryID(endpoint, eventID string) string {
	if len(eventID) == 4+2*idBytes && strings.HasPrefix(eventID, "evt_") && isHex(eventID[4:]) {
		return endpoint + "~" + eventID[4:]
	}
	s := sha256.Sum256([]byte(eventID + "\x00" + endpoint))
	return endpoint + "~h" + hex.EncodeToString(s[:12])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewDeliveryID returns a fresh delivery id for endpoint (used by Resend).
func NewDeliveryID(endpoint string) string {
	return endpoint + "~" + NewEventID()[4:]
}

// EndpointOf returns the endpoint part of a delivery id.
func EndpointOf(id string) (string, bool) {
	i := strings.LastIndexByte(id, '~')
	if i <= 0 {
		return "", false
	}
	return id[:i], true
}

// idBytes is the size of an event id: 6 bytes of milliseconds, 7 random bytes.
const idBytes = 13

// NewEventID returns a fresh event id: "evt_" and 26 hex characters, the first 12 the
// time in milliseconds (so ids sort by creation), the rest random.
func NewEventID() string {
	var b [idBytes]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return "evt_" + hex.EncodeToString(b[:])
}

// IdempotentEventID derives the event id of a publish carrying an Idempotency-Key, so a
// repeat maps to the same event.
func IdempotentEventID(key string) string {
	s := sha256.Sum256([]byte("idempotency\x00" + key))
	return "evk_" + hex.EncodeToString(s[:idBytes])
}
