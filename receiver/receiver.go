// Package receiver is Hookgate's inbound core: it authenticates a webhook request, checks
// and validates its JSON body, computes its event id, dedupes it, and hands it on.
//
// The package knows nothing of Caddy: the Caddy module translates its config into Options
// and calls Handle from its ServeHTTP.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/schemas"
	"github.com/hookgate/hookgate/transform"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Defaults.
const (
	DefaultDedupeWindow = 24 * time.Hour
	DefaultClaimTTL     = 5 * time.Minute
	// retryAfterInFlight and retryAfterStore are the Retry-After seconds of 409 and 503.
	retryAfterInFlight = "10"
	retryAfterStore    = "30"
)

// Options configure a Receiver. Secrets in Auth must already be resolved.
type Options struct {
	// Preset names a known sender (see Presets); its schema and event id are the defaults
	// of Schema and EventID, and it is the default Source. Optional.
	Preset string
	// Source names the sender (the preset, or "webhook"); it is the dedupe scope by default
	// and labels logs and metrics.
	Source string
	// Auth lists the credential lines; a request passes if one matches. Required.
	Auth []AuthSpec
	// Schema is an embedded schema name or a JSON Schema file; "" validates nothing
	// beyond JSON syntax.
	Schema string
	// EventID lists the event id sources; several make a composite key.
	EventID []string
	// MaxBody limits the body size in bytes. Default DefaultMaxBody.
	MaxBody int64
	// Dedupe is the dedupe window. 0 means DefaultDedupeWindow; negative turns dedupe off.
	Dedupe time.Duration
	// DedupeScope namespaces event ids in the store. Default Source.
	DedupeScope string
	// ClaimTTL bounds how long an id stays claimed while its request is handed on.
	// Default DefaultClaimTTL.
	ClaimTTL time.Duration
	// Store is the dedupe store; required when dedupe is on and an event id is known.
	Store dedupe.Store
	// AcceptOnStoreError hands a request on without dedupe when the store fails, instead
	// of answering 503.
	AcceptOnStoreError bool
	// OnStoreError, if set, is told of every store failure (for logs).
	OnStoreError func(error)
	// CaseDuplicates says whether an object with two keys that differ only in case
	// ({"id":"a","ID":"b"}) is refused. Default CaseDefault: refused when a schema is set.
	CaseDuplicates CaseRule
	// Order is the stale-event guard; nil takes the preset's (totvs_crm has one).
	Order *OrderSpec
	// OrderOff turns the guard off, the preset's included.
	OrderOff bool
	// OrderWindow, when positive, is the guard's window (the preset's guard too).
	// Default: the dedupe window.
	OrderWindow time.Duration
	// OrderMaxAhead, when positive, is the guard's MaxAhead (the preset's guard too).
	// Default DefaultOrderMaxAhead.
	OrderMaxAhead time.Duration
	// OrderStore keeps the guard's state; required when the guard is on.
	OrderStore order.Store
	// KeepBody, when positive, copies up to that many bytes of each request's body into
	// Result.Body (for the request log), and of its transformed body into
	// Result.Transformed. Default 0: none.
	KeepBody int
	// Transform, when set, reshapes an accepted webhook's body after authentication,
	// validation, the event id and the dedupe claim, and before the hand-off (and the
	// stale-event guard's record): the next handler reads the new body (and the headers
	// it sets). A failure answers 500 transform_failed. Default: none.
	Transform *transform.Transform
	// Route is the route's name, the `route` a transform sees. Default Source.
	Route string
	// Quarantine, when set, holds a request the schema refused instead of refusing it
	// (on_invalid quarantine): it is answered 202 with Webhook-Quarantined: true once
	// Quarantine returned, 503 when it failed (quarantine_full for quarantine.ErrFull).
	// Default: none (refused with 422).
	Quarantine Holder
	// Drift, when set, is told of every request's schema violations and of the fields its
	// body has that the schema does not name (in objects that allow them), accepted
	// requests included. It is called on the request path and must be quick; the body it
	// is given is valid only during the call. Default: none.
	Drift func(Drift)
}

// Holder keeps a request the schema refused and returns its quarantine id.
type Holder func(r *http.Request, h Held) (id string, err error)

// Held is a request the schema refused, as a Holder is given it.
type Held struct {
	// EventID is the event id computed from it, "" when none could be.
	EventID string
	// Body is the whole body (valid only during the call).
	Body []byte
	// Violations are the schema's.
	Violations []Violation
}

// Drift is what one request showed of a sender's payload drifting from the schema.
type Drift struct {
	// Violations are the schema's, nil when the body passed.
	Violations []Violation
	// Unnamed are the JSON pointers (array indices as *) of fields the schema does not
	// name, in objects whose schema names fields.
	Unnamed []string
	// Body is the request's body (valid only during the call).
	Body []byte
}

// CaseRule chooses whether keys that differ only in case are refused.
type CaseRule uint8

const (
	// CaseDefault refuses them on routes with a schema: what was validated must be what a
	// case-insensitive backend (Go's encoding/json) reads.
	CaseDefault CaseRule = iota
	// CaseReject always refuses them.
	CaseReject
	// CaseAllow never refuses them (exact duplicates are always refused).
	CaseAllow
)

// Receiver handles webhook requests for one route. It is safe for concurrent use.
type Receiver struct {
	source   string
	scope    string
	auth     *authenticator
	schema   *jsonschema.Schema
	eventID  *eventIDSpec
	maxBody  int64
	window   time.Duration
	claimTTL time.Duration
	store    dedupe.Store
	accept   bool
	onErr    func(error)
	foldKeys bool
	names    map[string]string // object keys the schema names, shared by decoded documents
	order    *orderGuard
	keepBody int
	tr       *transform.Transform
	route    string
	hidden   []string // the route's own credential headers, kept from a transform
	hold     Holder
	drift    func(Drift)
	shape    *shape // the schema's named fields, for Drift
}

// New checks opts and compiles everything a request needs (schema, credentials, id sources).
func New(opts Options) (*Receiver, error) {
	if opts.Preset != "" {
		p, err := LookupPreset(opts.Preset)
		if err != nil {
			return nil, err
		}
		if opts.Source == "" {
			opts.Source = opts.Preset
		}
		if opts.Schema == "" {
			opts.Schema = p.Schema
		}
		if len(opts.EventID) == 0 {
			opts.EventID = p.EventID
		}
		if opts.Order == nil && p.OrderBy != "" {
			kind, src := ParseOrderSource(p.OrderBy)
			opts.Order = &OrderSpec{Kind: kind, Value: src}
		}
		if opts.Order != nil && len(opts.Order.Keys) == 0 {
			spec := *opts.Order
			spec.Keys = p.OrderKeys // order_by <value> alone keeps the preset's record key
			opts.Order = &spec
		}
	}
	rc := &Receiver{
		source:   opts.Source,
		scope:    opts.DedupeScope,
		maxBody:  opts.MaxBody,
		window:   opts.Dedupe,
		claimTTL: opts.ClaimTTL,
		store:    opts.Store,
		accept:   opts.AcceptOnStoreError,
		onErr:    opts.OnStoreError,
		tr:       opts.Transform,
		route:    opts.Route,
		hidden:   CredentialHeaders(opts.Auth),
		hold:     opts.Quarantine,
		drift:    opts.Drift,
	}
	if rc.source == "" {
		rc.source = "webhook"
	}
	if rc.scope == "" {
		rc.scope = rc.source
	}
	if rc.route == "" {
		rc.route = rc.source
	}
	if rc.maxBody <= 0 {
		rc.maxBody = DefaultMaxBody
	}
	if rc.window == 0 {
		rc.window = DefaultDedupeWindow
	}
	if rc.claimTTL <= 0 {
		rc.claimTTL = DefaultClaimTTL
	}
	var err error
	if rc.auth, err = newAuthenticator(opts.Auth); err != nil {
		return nil, err
	}
	if opts.Schema != "" {
		if rc.schema, err = schemas.Compile(opts.Schema); err != nil {
			return nil, err
		}
		rc.names = propertyNames(rc.schema)
		if rc.drift != nil {
			rc.shape = newShape(rc.schema)
		}
	}
	if rc.hold != nil && rc.schema == nil {
		return nil, errors.New("on_invalid quarantine needs a schema (the preset's, or `schema`)")
	}
	rc.foldKeys = opts.CaseDuplicates == CaseReject || (opts.CaseDuplicates == CaseDefault && rc.schema != nil)
	if rc.eventID, err = newEventIDSpec(opts.EventID); err != nil {
		return nil, err
	}
	if rc.dedupeOn() && rc.store == nil {
		return nil, errors.New("dedupe is on but no store was given")
	}
	if opts.Order != nil && !opts.OrderOff {
		window := rc.window
		if window <= 0 {
			window = DefaultDedupeWindow
		}
		spec := *opts.Order
		if opts.OrderWindow > 0 {
			spec.Window = opts.OrderWindow
		}
		if opts.OrderMaxAhead > 0 {
			spec.MaxAhead = opts.OrderMaxAhead
		}
		if rc.order, err = newOrderGuard(spec, opts.OrderStore, rc.scope, window); err != nil {
			return nil, err
		}
	}
	rc.keepBody = opts.KeepBody
	return rc, nil
}

type replayKey struct{}

// Replay marks a request as the operator's replay of one already received (the request
// log's): authentication is skipped, since the original passed it and its credentials
// were not kept; with Force, dedupe and the stale-event guard are skipped too.
type Replay struct {
	// Force hands the event on even if it was processed already, or is older than its
	// record's newest.
	Force bool
	// Release marks the release of a quarantined request: a body the schema still refuses
	// is refused (422), not quarantined again.
	Release bool
	// SkipSchema hands the body on without checking it against the schema ("release
	// anyway").
	SkipSchema bool
}

// WithReplay returns ctx marking its request as a replay. Only in-process code can set a
// context value, so a request from outside can never claim to be one.
func WithReplay(ctx context.Context, rp Replay) context.Context {
	return context.WithValue(ctx, replayKey{}, rp)
}

func (rc *Receiver) dedupeOn() bool { return rc.window > 0 && rc.eventID != nil }

// Source returns the receiver's source name.
func (rc *Receiver) Source() string { return rc.source }

// Scope returns the namespace of this receiver's event ids in the store (DedupeScope, or
// the source by default).
func (rc *Receiver) Scope() string { return rc.scope }

// Event is what a handed-on request carries.
type Event struct {
	// Source is the receiver's source name.
	Source string
	// ID is the event id ("" when no event id source is configured).
	ID string
	// Verified is true when a credential was checked (not `auth none`).
	Verified bool
	// Body is the body handed on: the exact body received, or what the route's transform
	// made of it. It must not be modified.
	Body []byte
	// Outcome is set by a Next that hands the event on other than by answering with the
	// backend's status (async mode: problem.ReasonQueued, problem.ReasonQueueUnavailable, problem.ReasonQueueFailed).
	// Default problem.ReasonAccepted.
	Outcome Reason

	storeTime time.Duration // spent in the order guard's store calls
	aborted   bool          // the hand-off aborted the answer (see callNext)
	// transformed is the body the transform made (nil without one); problem the
	// transform's failure, answered by the hand-off.
	transformed   []byte
	transformTime time.Duration
	doc           any // the decoded body, for a transform that can read it
	problem       *Problem
}

// outcome is how the hand-off of ev ended.
func (ev *Event) outcome() Reason {
	if ev.Outcome != "" {
		return ev.Outcome
	}
	return problem.ReasonAccepted
}

// Result tells how a request ended.
type Result struct {
	Reason    Reason
	Status    int
	EventID   string
	Verified  bool
	Duplicate bool
	// Stages holds how long each stage took: auth, parse, validate, store.
	Stages Stages
	// Problem is the refusal answered, if any.
	Problem *Problem
	// Aborted is true when the hand-off aborted the answer (next panicked with
	// http.ErrAbortHandler, as reverse_proxy does when the sender went away while the
	// backend's answer was being copied): the request was handed on and its outcome is
	// what the backend answered. The caller records it, then panics with
	// http.ErrAbortHandler itself so the server drops the connection as before.
	Aborted bool
	// Passed is true once the request passed authentication and every check (it was
	// handed on, or answered as a duplicate, stale, busy or store failure).
	Passed bool
	// Body holds the first Options.KeepBody bytes of the body (a copy), BodySize its size.
	Body     []byte
	BodySize int
	// OrderKey and OrderValue are the record key and the order value (as received) the
	// stale-event guard found, when the route has one.
	OrderKey, OrderValue string
	// Transformed holds the first Options.KeepBody bytes of the body the route's transform
	// made (a copy), TransformedSize its size; nil when no transform ran or it failed.
	Transformed     []byte
	TransformedSize int
	// Quarantined is the quarantine id of a request the schema refused and the route held.
	Quarantined string
}

// Stages are stage latencies of one request.
type Stages struct {
	Auth, Parse, Validate, Store, Transform time.Duration
}

// Next hands an accepted request on. It must answer the request, or return an error that
// the caller's server turns into an answer.
type Next func(w http.ResponseWriter, r *http.Request, ev *Event) error

// Handle runs one webhook request through the receiver. It answers refusals and duplicates
// itself (problem+json) and calls next for an accepted request; next's error is returned.
func (rc *Receiver) Handle(w http.ResponseWriter, r *http.Request, next Next) (Result, error) {
	var bb *readBuf
	res, err := rc.handle(w, r, next, &bb)
	// Once the request is answered nothing refers to the body, so its buffer is reused.
	// Not after an error (Caddy's error routes may still read the request) or a panic
	// (which skips this): then the buffer is left to the GC.
	if bb != nil && rc.keepBody > 0 {
		res.BodySize = len(bb.b)
		res.Body = append([]byte(nil), bb.b[:min(len(bb.b), rc.keepBody)]...)
	}
	if bb != nil && err == nil && !res.Aborted { // an aborted hand-off may still hold the body
		r.Body, r.GetBody = http.NoBody, nil
		putBody(bb)
	}
	return res, err
}

func (rc *Receiver) handle(w http.ResponseWriter, r *http.Request, next Next, read **readBuf) (res Result, err error) {
	if r.Method != http.MethodPost {
		p := newProblem(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
			"webhooks are delivered with POST, not "+r.Method).WithHeader("Allow", "POST")
		return rc.refuse(w, p, res)
	}
	t0 := time.Now()
	rp, replay := r.Context().Value(replayKey{}).(Replay)
	ok, pending := true, false
	if !replay { // a replay passed authentication when it was first received
		ok, pending = rc.auth.checkHeaders(r)
	}
	res.Stages.Auth = time.Since(t0)
	if !ok && !pending {
		return rc.refuse(w, rc.auth.unauthorized(), res)
	}
	if p := checkContentType(r.Header.Get("Content-Type")); p != nil {
		return rc.refuse(w, p, res)
	}
	bb, p := readBody(r, rc.maxBody)
	if p != nil {
		return rc.refuse(w, p, res)
	}
	*read = bb
	body := bb.b
	if !ok {
		t1 := time.Now()
		ok = rc.auth.checkBody(r, body)
		res.Stages.Auth += time.Since(t1)
		if !ok {
			return rc.refuse(w, rc.auth.unauthorized(), res)
		}
	}
	res.Verified = !rc.auth.open

	t1 := time.Now()
	// A transform reads the same document (one decode), unless it calls `matches`, whose
	// budget needs the longest string that only its own decoding measures.
	decode := rc.schema != nil || (rc.eventID != nil && rc.eventID.needsJSON()) || (rc.order != nil && rc.order.needsJSON()) ||
		(rc.tr != nil && !rc.tr.Matches())
	doc, p := parseJSON(body, decode, rc.foldKeys, rc.names)
	res.Stages.Parse = time.Since(t1)
	if p != nil {
		return rc.refuse(w, p, res)
	}
	if rc.schema != nil && !rp.SkipSchema {
		t2 := time.Now()
		verr := rc.schema.Validate(doc)
		res.Stages.Validate = time.Since(t2)
		if verr != nil {
			p := schemaProblem(verr)
			if rc.drift != nil && !replay {
				rc.drift(Drift{Violations: p.Errors, Unnamed: rc.shape.unnamed(doc), Body: body})
			}
			if rc.hold != nil && !rp.Release {
				return rc.quarantine(w, r, body, doc, p, res)
			}
			return rc.refuse(w, p, res)
		}
		if rc.drift != nil && !replay {
			if un := rc.shape.unnamed(doc); un != nil {
				rc.drift(Drift{Unnamed: un, Body: body})
			}
		}
	}
	ev := &Event{Source: rc.source, Verified: res.Verified, Body: body}
	if rc.tr != nil && !rc.tr.Matches() {
		ev.doc = doc
	}
	if rc.eventID != nil {
		id, found := rc.eventID.compute(r, body, doc)
		if !found && rc.dedupeOn() {
			return rc.refuse(w, newProblem(http.StatusBadRequest, problem.ReasonMissingEventID, "Missing Event Id",
				"the event id ("+rc.eventID.describe()+") is missing or empty in this request"), res)
		}
		ev.ID = id
		res.EventID = id
	}
	if rc.tr != nil {
		next = rc.transformNext(next) // inside the guard: a failed transform records no order value
	}
	if rc.order != nil {
		o, p := rc.order.extract(r, body, doc)
		if p != nil && !rp.Force {
			return rc.refuse(w, p, res)
		}
		if p == nil {
			res.OrderKey, res.OrderValue = rc.order.recordKey(o), o.raw
			if !rp.Force {
				next = rc.guard(next, o)
			}
		}
	}
	res.Passed = true
	restoreBody(r, bb)
	if !rc.dedupeOn() || rp.Force {
		return rc.handOn(w, r, next, ev, res)
	}
	return rc.handOnOnce(w, r, next, ev, res)
}

// quarantine holds a request the schema refused (p) and answers 202, or 503 when it
// cannot be held.
func (rc *Receiver) quarantine(w http.ResponseWriter, r *http.Request, body []byte, doc any, p *Problem, res Result) (Result, error) {
	h := Held{Body: body, Violations: p.Errors}
	if rc.eventID != nil {
		h.EventID, _ = rc.eventID.compute(r, body, doc)
		res.EventID = h.EventID
	}
	t0 := time.Now()
	id, err := rc.hold(r, h)
	res.Stages.Store += time.Since(t0)
	if errors.Is(err, quarantine.ErrTooLarge) { // it can never be held: refused as in reject mode
		p.Detail += "; the request is larger than the route's quarantine (max_bytes), so it was not held"
		return rc.refuse(w, p, res)
	}
	if errors.Is(err, quarantine.ErrFull) {
		return rc.refuse(w, newProblem(http.StatusServiceUnavailable, problem.ReasonQuarantineFull, "Service Unavailable",
			"the body does not match the schema, and the route's quarantine is full; retry later").WithHeader("Retry-After", retryAfterStore), res)
	}
	if err != nil {
		if rc.onErr != nil {
			rc.onErr(fmt.Errorf("quarantining a request: %w", err))
		}
		return rc.refuse(w, newProblem(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the body does not match the schema, and the quarantine store cannot be reached; retry later").WithHeader("Retry-After", retryAfterStore), res)
	}
	q := newProblem(http.StatusAccepted, problem.ReasonQuarantined, "Quarantined",
		fmt.Sprintf("the body does not match the schema (%d violation(s)); it is held as %s and will be handed on when an operator releases it", len(p.Errors), id))
	q.Instance, q.Errors = id, p.Errors
	q.WithHeader("Webhook-Quarantined", "true").Write(w)
	res.Reason, res.Status, res.Problem, res.Quarantined = problem.ReasonQuarantined, http.StatusAccepted, q, id
	return res, nil
}

func (rc *Receiver) refuse(w http.ResponseWriter, p *Problem, res Result) (Result, error) {
	p.Write(w)
	res.Reason, res.Status, res.Problem = Reason(p.Reason()), p.Status, p
	return res, nil
}

// callNext hands the request on. A hand-off that aborts the answer (next panics with
// http.ErrAbortHandler, as reverse_proxy does when the sender leaves while the backend's
// answer is copied) did happen: the panic is recovered, so the hand-off is committed and
// recorded like any other, and ev says so (Result.Aborted). Any other panic goes on.
func callNext(next Next, w http.ResponseWriter, r *http.Request, ev *Event) error {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			ev.aborted = true
		}
	}()
	return next(w, r, ev)
}

func (rc *Receiver) handOn(w http.ResponseWriter, r *http.Request, next Next, ev *Event, res Result) (Result, error) {
	sw := &statusWriter{ResponseWriter: w}
	err := callNext(next, sw, r, ev)
	res.Reason, res.Status = ev.outcome(), sw.statusOr200()
	rc.handedOn(ev, &res)
	return res, err
}

// handedOn adds to res what the hand-off of ev did.
func (rc *Receiver) handedOn(ev *Event, res *Result) {
	res.Aborted = ev.aborted
	res.Stages.Store += ev.storeTime
	res.Stages.Transform = ev.transformTime
	if ev.problem != nil {
		res.Problem = ev.problem
	}
	if ev.transformed != nil && rc.keepBody > 0 {
		res.TransformedSize = len(ev.transformed)
		res.Transformed = append([]byte(nil), ev.transformed[:min(len(ev.transformed), rc.keepBody)]...)
	}
}

// handOnOnce claims the event id, hands the request on, then commits the id on a 2xx and
// releases it on anything else (an error, a non-2xx status, a panic).
func (rc *Receiver) handOnOnce(w http.ResponseWriter, r *http.Request, next Next, ev *Event, res Result) (Result, error) {
	key := rc.scope + ":" + ev.ID
	t0 := time.Now()
	// Stores bound their own calls (the Redis client's timeouts), so no timer per request.
	state, tok, err := rc.store.Claim(r.Context(), key, rc.claimTTL)
	res.Stages.Store = time.Since(t0)
	if err != nil {
		if rc.onErr != nil {
			rc.onErr(fmt.Errorf("claiming event %q: %w", ev.ID, err))
		}
		if rc.accept {
			return rc.handOn(w, r, next, ev, res)
		}
		return rc.refuse(w, newProblem(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the dedupe store cannot be reached; retry later").WithHeader("Retry-After", retryAfterStore), res)
	}
	switch state {
	case dedupe.Processed:
		writeDuplicate(w, ev.ID)
		res.Reason, res.Status, res.Duplicate = problem.ReasonDuplicate, http.StatusOK, true
		return res, nil
	case dedupe.InFlight:
		res.Duplicate = true
		return rc.refuse(w, newProblem(http.StatusConflict, problem.ReasonInFlight, "Conflict",
			"this event is being handed on right now; retry later").WithHeader("Retry-After", retryAfterInFlight), res)
	}

	sw := &statusWriter{ResponseWriter: w}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Not a 2xx, an error, a panic: forget the claim so the sender's retry gets through.
		if err := rc.store.Release(context.WithoutCancel(r.Context()), key, tok); err != nil && rc.onErr != nil {
			rc.onErr(fmt.Errorf("releasing event %q: %w", ev.ID, err))
		}
	}()
	err = callNext(next, sw, r, ev)
	res.Reason, res.Status = ev.outcome(), sw.statusOr200()
	rc.handedOn(ev, &res)
	if err == nil && res.Status >= 200 && res.Status < 300 {
		t1 := time.Now()
		cerr := rc.store.Commit(context.WithoutCancel(r.Context()), key, rc.window)
		res.Stages.Store += time.Since(t1)
		if cerr != nil {
			// The event was handed on; a missing mark costs at most one duplicate later.
			if rc.onErr != nil {
				rc.onErr(fmt.Errorf("committing event %q: %w", ev.ID, cerr))
			}
		} else {
			committed = true
		}
	}
	return res, err
}

func writeDuplicate(w http.ResponseWriter, id string) {
	writeMarked(w, id, "Webhook-Duplicate", "duplicate")
}

// writeMarked answers 200 {"id":…,"<field>":true} with header: true, for an event that is
// acknowledged without being handed on (a duplicate, a stale event).
func writeMarked(w http.ResponseWriter, id, header, field string) {
	q, _ := json.Marshal(id) // a string always marshals; control characters are escaped
	b := append(append(append(make([]byte, 0, len(q)+len(field)+16), `{"id":`...), q...), `,"`...)
	b = append(append(b, field...), `":true}`...)
	h := w.Header()
	h.Set(header, "true")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// statusWriter records the status a handler answered with. Unwrap lets
// http.ResponseController reach the underlying writer (flushing, deadlines, hijacking).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for handlers that assert it directly.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
