// Package sender delivers queued events to HTTP endpoints: the workers behind outbound
// webhooks and inbound `mode async`. It never imports Caddy; the Caddy glue builds
// Endpoints from the config and runs a Dispatcher between the app's Start and Stop.
package sender

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/signature"
	"github.com/hookgate/hookgate/transform"
	"golang.org/x/net/http/httpguts"
)

// Defaults.
var (
	// DefaultRetry is the retry schedule: the delays before the 2nd, 3rd, … attempt.
	DefaultRetry = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
)

// Default values of Endpoint fields.
const (
	DefaultConnectTimeout  = 5 * time.Second
	DefaultResponseTimeout = 60 * time.Second
	DefaultConcurrency     = 16
	// MaxRetryAfter caps how long a Retry-After answer can push a retry out.
	MaxRetryAfter = time.Hour
)

// Endpoint is one delivery target.
type Endpoint struct {
	// Name identifies the endpoint (see queue.ValidEndpointName).
	Name string
	// URL is where events are POSTed (http or https).
	URL string
	// Events are glob patterns (path.Match) on the event type; empty means every event.
	Events []string
	// Header is added to every attempt.
	Header http.Header
	// SigningSecrets, when set, sign every attempt with Standard Webhooks (whsec_…).
	SigningSecrets []string
	// ConnectTimeout bounds DNS, TCP and TLS. Default 5s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for the answer's headers. Default 60s.
	ResponseTimeout time.Duration
	// Retry is the retry schedule. Default DefaultRetry.
	Retry []time.Duration
	// RatePerSecond limits attempts per second on this instance; 0 means no limit.
	RatePerSecond float64
	// AllowPrivate permits loopback, private and other non-public targets.
	AllowPrivate bool
	// Concurrency is how many attempts run at once on this instance. Default 16.
	Concurrency int
	// Inbound marks the internal target of an inbound `mode async` route: it takes no
	// published events.
	Inbound bool
	// Filter, when set, is a CEL expression (see CompileFilter) an event must match
	// besides Events. Default: none.
	Filter string
	// RetiredSecrets also sign every attempt, each until its Until: a rotated secret's
	// grace, so a receiver that still has the old one keeps verifying.
	RetiredSecrets []RetiredSecret
	// Subscription marks an endpoint made from a run-time subscription (its Name is the
	// subscription's id).
	Subscription bool
	// Description labels the endpoint in listings and metrics.
	Description string
	// Transform, when set, is a CEL transform (package transform, outbound side) applied
	// once when an event is queued for the endpoint: what is stored, signed, retried and
	// shown is its result. Filters still see the original event. Default: none.
	Transform string
	// Breaker is the endpoint's circuit breaker (on by default; see BreakerPolicy).
	Breaker BreakerPolicy

	filter    *Filter
	fstats    filterStats
	transform *transform.Transform
	tstats    filterStats
	seq       uint64 // the registry's insertion order
	signer    signer
	httpMu    sync.Mutex // guards client and conns, made on first use: an idle endpoint has none
	client    *http.Client
	conns     *connSet
	secrets   []string // the credentials it sends (sentSecrets), masked in what is kept of an answer
	redacted  string   // URL without its query values and password, for every text that leaves
}

// signer signs a delivery (Standard Webhooks, every configured secret).
type signer interface {
	Sign(msg signature.Message) (http.Header, error)
}

// RetiredSecret is a signing secret kept for a grace period after a rotation.
type RetiredSecret struct {
	// Secret is the whsec_ secret.
	Secret string
	// Until is when it stops signing.
	Until time.Time
}

// rotatingSigner signs with the current secrets and the retired ones still in their
// grace, rebuilding its verifier when one of those expires.
type rotatingSigner struct {
	current []string
	retired []RetiredSecret

	mu    sync.Mutex
	alive int // how many retired secrets the cached verifier includes
	next  time.Time
	v     *signature.Verifier
}

func newRotatingSigner(current []string, retired []RetiredSecret) (*rotatingSigner, error) {
	r := &rotatingSigner{current: current, retired: append([]RetiredSecret(nil), retired...)}
	sort.Slice(r.retired, func(i, j int) bool { return r.retired[i].Until.After(r.retired[j].Until) })
	return r, r.rebuild(time.Now())
}

// rebuild makes the verifier for the secrets alive at now.
func (r *rotatingSigner) rebuild(now time.Time) error {
	secrets := append([]string(nil), r.current...)
	alive := 0
	r.next = time.Time{}
	for _, rs := range r.retired { // latest expiry first
		if rs.Until.After(now) {
			secrets = append(secrets, rs.Secret)
			alive++
			r.next = rs.Until // the earliest expiry among those alive
		}
	}
	v, err := signature.NewVerifier(signature.Config{Scheme: signature.Standard, Secrets: secrets})
	if err != nil {
		return err
	}
	r.v, r.alive = v, alive
	return nil
}

func (r *rotatingSigner) Sign(msg signature.Message) (http.Header, error) {
	r.mu.Lock()
	if r.alive > 0 && !msg.Time.Before(r.next) {
		if err := r.rebuild(msg.Time); err != nil {
			r.mu.Unlock()
			return nil, err
		}
	}
	v := r.v
	r.mu.Unlock()
	return v.Sign(msg)
}

// RedactURL hides a URL's password and query values (tokens often travel there), keeping
// the parameter names so an operator can tell which URL it is.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{credential.Redacted}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

// RedactedURL is the endpoint's URL as it may be shown: see RedactURL.
func (e *Endpoint) RedactedURL() string { return RedactURL(e.URL) }

// scrub removes the endpoint's URL from an error text (Go's URL errors quote the whole
// URL, query and password included), putting the redacted one in its place.
func (e *Endpoint) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = e.redacted
	}
	return err
}

// Reserved starts of endpoint names: each belongs to endpoints Hookgate makes itself, so a
// configured endpoint cannot take one (its deliveries, metrics and admin routes would be
// mistaken for theirs).
const (
	// SubscriptionPrefix starts the names (ids) of run-time subscriptions' endpoints.
	SubscriptionPrefix = "sub_"
	// FeedPrefix starts the queue endpoints of feeds.
	FeedPrefix = "feed."
	// InboundPrefix starts the internal targets of inbound async routes.
	InboundPrefix = "inbound-"
)

// MaxConcurrency is the most attempts one endpoint may run at once per instance.
const MaxConcurrency = 1024

// Prepare validates the endpoint and fills in defaults.
func (e *Endpoint) Prepare() error {
	if !queue.ValidEndpointName(e.Name) {
		return fmt.Errorf("endpoint name %q: use 1-64 letters, digits, '_', '-' or '.'", e.Name)
	}
	hasPrefix := func(p string) bool { return len(e.Name) >= len(p) && strings.EqualFold(e.Name[:len(p)], p) }
	switch {
	case hasPrefix(SubscriptionPrefix) && !e.Subscription, hasPrefix(InboundPrefix) && !e.Inbound, hasPrefix(FeedPrefix):
		return fmt.Errorf("endpoint %s: names starting with %q, %q or %q are kept for subscriptions, async routes and feeds",
			e.Name, SubscriptionPrefix, InboundPrefix, FeedPrefix)
	}
	for k, vs := range e.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("endpoint %s: header name %q is not a valid HTTP header name", e.Name, k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("endpoint %s: the value of header %s has a character HTTP does not allow (a line break, a control character)", e.Name, k)
			}
		}
	}
	if e.Concurrency < 0 || e.Concurrency > MaxConcurrency {
		return fmt.Errorf("endpoint %s: concurrency %d: a number from 1 to %d", e.Name, e.Concurrency, MaxConcurrency)
	}
	for _, d := range e.Retry {
		if d <= 0 {
			return fmt.Errorf("endpoint %s: retry delays must be positive", e.Name)
		}
	}
	e.redacted = RedactURL(e.URL)
	e.secrets = e.sentSecrets()
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %s: url %q must be an absolute http or https URL", e.Name, e.redacted)
	}
	for _, p := range e.Events {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("endpoint %s: bad event pattern %q: %v", e.Name, p, err)
		}
	}
	if e.ConnectTimeout <= 0 {
		e.ConnectTimeout = DefaultConnectTimeout
	}
	if e.ResponseTimeout <= 0 {
		e.ResponseTimeout = DefaultResponseTimeout
	}
	if e.Retry == nil {
		e.Retry = DefaultRetry
	}
	if e.Concurrency <= 0 {
		e.Concurrency = DefaultConcurrency
	}
	if err := e.Breaker.Validate(); err != nil {
		return fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	e.Breaker = e.Breaker.WithDefaults()
	if len(e.SigningSecrets) > 0 {
		v, err := newRotatingSigner(e.SigningSecrets, e.RetiredSecrets)
		if err != nil {
			return fmt.Errorf("endpoint %s: sign: %w", e.Name, err)
		}
		e.signer = v
	}
	if e.Filter != "" {
		f, err := CompileFilter(e.Filter)
		if err != nil {
			return fmt.Errorf("endpoint %s: filter: %w", e.Name, err)
		}
		e.filter = f
	}
	if e.Transform != "" {
		if e.Inbound {
			return fmt.Errorf("endpoint %s: the internal target of an inbound route takes no transform (set it on the route)", e.Name)
		}
		t, err := transform.Compile(transform.Outbound, e.Transform)
		if err != nil {
			return fmt.Errorf("endpoint %s: transform: %w", e.Name, err)
		}
		e.transform = t
	}
	return nil
}

// FilterStats counts an endpoint's filter failures since it was added (a subscription's
// change replaces its endpoint, and starts them afresh). A failed filter is a non-match:
// the endpoint does not get that event.
type FilterStats struct {
	// Errors counts evaluations that failed at run time (a missing field, a type error,
	// the cost limit of one evaluation).
	Errors uint64 `json:"errors"`
	// OverBudget counts evaluations not run, or interrupted, because the publish's filter
	// budget was used up (ErrFilterBudget).
	OverBudget uint64 `json:"over_budget"`
	// LastError is the latest failure's error text; empty if none.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when it happened.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

type filterFailure struct {
	msg string
	at  time.Time
}

// filterStats is an endpoint's FilterStats, updated without locks by concurrent publishes.
type filterStats struct {
	errors, overBudget atomic.Uint64
	last               atomic.Pointer[filterFailure]
	logged             atomic.Int64  // unix nanoseconds of the last log line
	unlogged           atomic.Uint64 // failures since then
}

// filterLogEvery is the least time between two log lines of one endpoint's filter failures.
const filterLogEvery = time.Minute

// failed records a failure, and tells whether to log it now (with the failures since the
// last line).
func (st *filterStats) failed(err error, now time.Time) (uint64, bool) {
	if errors.Is(err, ErrFilterBudget) || errors.Is(err, transform.ErrBudget) {
		st.overBudget.Add(1)
	} else {
		st.errors.Add(1)
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	st.last.Store(&filterFailure{msg: msg, at: now})
	st.unlogged.Add(1)
	prev := st.logged.Load()
	if now.UnixNano()-prev < int64(filterLogEvery) || !st.logged.CompareAndSwap(prev, now.UnixNano()) {
		return 0, false
	}
	return st.unlogged.Swap(0), true
}

// FilterStats returns the endpoint's filter failures.
func (e *Endpoint) FilterStats() FilterStats { return e.fstats.stats() }

func (st *filterStats) stats() FilterStats {
	fs := FilterStats{Errors: st.errors.Load(), OverBudget: st.overBudget.Load()}
	if l := st.last.Load(); l != nil {
		at := l.at.UTC()
		fs.LastError, fs.LastErrorAt = l.msg, &at
	}
	return fs
}

// httpClient returns the endpoint's client, making it on first use (10,000 idle
// subscriptions then hold no transports).
func (e *Endpoint) httpClient() *http.Client {
	e.httpMu.Lock()
	defer e.httpMu.Unlock()
	if e.client == nil {
		e.client, e.conns = newClient(e.ConnectTimeout, e.ResponseTimeout, e.AllowPrivate, e.Concurrency)
	}
	return e.client
}

// closeConns closes every connection the endpoint's client opened, idle ones included.
func (e *Endpoint) closeConns() {
	e.httpMu.Lock()
	c := e.conns
	e.httpMu.Unlock()
	if c != nil {
		c.closeAll()
	}
}

// Matches reports whether the endpoint takes events of type typ.
func (e *Endpoint) Matches(typ string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, p := range e.Events {
		if ok, _ := path.Match(p, typ); ok {
			return true
		}
	}
	return false
}

// nextDelay is the delay before the attempt after attempt number n (1-based), with ±20%
// jitter, and false when the schedule is used up.
func (e *Endpoint) nextDelay(n int) (time.Duration, bool) {
	if n > len(e.Retry) {
		return 0, false
	}
	d := e.Retry[n-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())), true
}

// ParseRate reads a rate limit "<n>/<unit>" (unit s, m or h) as events per second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil || v <= 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate_limit %q: want <n>/<unit>, e.g. 10/s or 600/m", s)
	}
	switch unit {
	case "s", "sec", "second":
		return v, nil
	case "m", "min", "minute":
		return v / 60, nil
	case "h", "hour":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("rate_limit %q: unit must be s, m or h", s)
}
