// Package quarantine keeps the webhooks a route's schema refused, when the route says
// `on_invalid quarantine`: each is held durably (the embedded file, or Redis shared by every
// instance) until an operator releases it (it is then checked again and handed on as a
// replay is) or drops it; released and dropped ones stay as history. Beside the held
// requests, each route keeps its drift report: the violations and unnamed fields it saw,
// grouped by JSON pointer and message.
//
// A held request is answered 202 only once it is durable; a quarantine that is full
// (MaxBytes of held requests) refuses new ones rather than evicting any it holds.
package quarantine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
)

// Defaults.
const (
	// DefaultMaxAge is how long a held request, and the history, are kept: 14 days. A
	// held request older than that is deleted (and counted as expired).
	DefaultMaxAge = 14 * 24 * time.Hour
	// DefaultMaxBytes bounds one route's quarantine, held requests and history together:
	// 256 MiB. History goes first when a new request needs room; held requests are never
	// evicted to make room (a full quarantine refuses new requests with 503).
	DefaultMaxBytes = 256 << 20
	// MaxGroups bounds one route's drift report: further groups count in one "(other)"
	// group.
	MaxGroups = 200
	// ExampleBytes is how much of an example body a drift group keeps.
	ExampleBytes = 4 << 10
)

// Errors.
var (
	// ErrFull: the route's quarantine holds MaxBytes of requests (history evicted).
	ErrFull = errors.New("quarantine full")
	// ErrTooLarge: the request alone counts more than the quarantine's MaxBytes: it can
	// never be held, so a retry would not help.
	ErrTooLarge = errors.New("request larger than the quarantine")
	// ErrNotFound: no such request. It is storeerr.ErrNotFound.
	ErrNotFound = storeerr.ErrNotFound
)

// State is where a quarantined request stands.
type State string

// States.
const (
	// Held: waiting for release or drop.
	Held State = "held"
	// Released: handed on (or found already handed on: a duplicate, or stale).
	Released State = "released"
	// Dropped: removed by an operator.
	Dropped State = "dropped"
)

// Item is one quarantined request.
type Item struct {
	// ID identifies it ("q_", time-ordered).
	ID string `json:"id"`
	// Route is the route that quarantined it.
	Route string `json:"route"`
	// Time is when it was received.
	Time time.Time `json:"time"`
	// EventID is the event id computed from it, when one could be.
	EventID string `json:"event_id,omitempty"`
	// Remote is the sender's address; Host, URI and TLS rebuild the request at release.
	Remote string `json:"remote,omitempty"`
	Host   string `json:"host"`
	URI    string `json:"uri"`
	TLS    bool   `json:"tls,omitempty"`
	// Header is the request's headers, credentials redacted.
	Header http.Header `json:"headers"`
	// Body is the whole body as received.
	Body []byte `json:"-"`
	// Violations are why the schema refused it: at first, or at the last release that
	// found it still invalid.
	Violations []problem.Violation `json:"violations"`
	// State is held, released or dropped.
	State State `json:"state"`
	// Attempts is how many releases tried it; LastAttempt when, LastOutcome how the last
	// ended (an inbound outcome: accepted, queued, duplicate, schema_violation, …) and
	// LastDetail why it failed.
	Attempts    int        `json:"release_attempts,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastOutcome string     `json:"last_outcome,omitempty"`
	LastDetail  string     `json:"last_detail,omitempty"`
	// Settled is when it was released or dropped; Forced tells a release that skipped
	// the schema ("release anyway"); Request is the release's record in the request log.
	Settled *time.Time `json:"settled_at,omitempty"`
	Forced  bool       `json:"forced,omitempty"`
	Request string     `json:"request_id,omitempty"`
}

// Size is what the item counts against the quarantine's MaxBytes.
func (it *Item) Size() int64 {
	n := 512 + len(it.Body) + len(it.URI) + len(it.Host)
	for k, vs := range it.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	return int64(n + violationsSize(it.Violations))
}

func violationsSize(vs []problem.Violation) int {
	n := 0
	for _, v := range vs {
		n += 32 + len(v.Pointer) + len(v.Message) + violationsSize(v.Errors)
	}
	return n
}

// Matches reports whether one of the item's violations (or their nested errors) is at
// pointer, or below it; the pointer may use * for any array index or key.
func (it *Item) Matches(pointer string) bool { return matchAny(it.Violations, pointer) }

func matchAny(vs []problem.Violation, pointer string) bool {
	for _, v := range vs {
		if PointerMatch(pointer, v.Pointer) || matchAny(v.Errors, pointer) {
			return true
		}
	}
	return false
}

// PointerMatch reports whether p is pattern or below it; a "*" token of pattern matches
// any one token of p.
func PointerMatch(pattern, p string) bool {
	if pattern == "" || pattern == "/" {
		return true
	}
	pt, tt := strings.Split(pattern, "/")[1:], strings.Split(p, "/")
	if len(tt) == 0 || tt[0] != "" {
		return false
	}
	tt = tt[1:]
	if len(tt) < len(pt) {
		return false
	}
	for i, tok := range pt {
		if tok != "*" && tok != tt[i] {
			return false
		}
	}
	return true
}

// Generalize replaces each all-digit token of a JSON pointer (an array index) with *,
// so a drift group covers every element of an array.
func Generalize(p string) string {
	if !strings.ContainsAny(p, "0123456789") {
		return p
	}
	toks := strings.Split(p, "/")
	for i, t := range toks {
		if i > 0 && t != "" && strings.Trim(t, "0123456789") == "" {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, "/")
}

// View is an item as the admin API shows it: its body as text, or base64 when it is not
// UTF-8.
type View struct {
	Item
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
	BodySize   int    `json:"body_bytes"`
}

// View returns the item for the admin API.
func (it *Item) View() View {
	v := View{Item: *it, BodySize: len(it.Body)}
	if utf8.Valid(it.Body) {
		v.Body = string(it.Body)
	} else {
		v.BodyBase64 = base64.StdEncoding.EncodeToString(it.Body)
	}
	return v
}

var (
	idPrefix = strconv.FormatInt(time.Now().UnixNano()%0xfffff, 16)
	idSeq    atomic.Uint64
)

// NewID returns an item id: time-ordered (lexical order is time order, to the
// millisecond, across instances) and unique.
func NewID(now time.Time) string {
	ms := strconv.FormatInt(now.UnixMilli(), 16)
	return "q_" + strings.Repeat("0", max(0, 12-len(ms))) + ms + idPrefix + strconv.FormatUint(idSeq.Add(1), 36)
}

// IDBefore is the smallest id of an item received at t or later: every id below it is older.
func IDBefore(t time.Time) string {
	ms := strconv.FormatInt(max(t.UnixMilli(), 0), 16)
	return "q_" + strings.Repeat("0", max(0, 12-len(ms))) + ms
}

// IDTime returns when the item of id was received (to the millisecond), or the zero time.
func IDTime(id string) time.Time {
	if len(id) < 14 || !strings.HasPrefix(id, "q_") {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(id[2:14], 16, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Filter selects items to list.
type Filter struct {
	// State keeps items in this state ("" held).
	State State
	// After lists items whose id is greater (a cursor: the last id of a previous page).
	After string
	// Limit caps the answer. Default 50.
	Limit int
}

// Limits are a route's retention.
type Limits struct {
	// MaxAge is how long items are kept. Default DefaultMaxAge.
	MaxAge time.Duration
	// MaxBytes bounds the route's items together. Default DefaultMaxBytes.
	MaxBytes int64
}

// WithDefaults returns l with DefaultMaxAge and DefaultMaxBytes where unset.
func (l Limits) WithDefaults() Limits {
	if l.MaxAge <= 0 {
		l.MaxAge = DefaultMaxAge
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// Outcome is what a release attempt did to an item.
type Outcome struct {
	// State is Released, Dropped, or Held (still invalid, or the hand-off failed).
	State State
	// Outcome and Detail are how the attempt ended (empty for a drop).
	Outcome, Detail string
	// Violations replace the item's when it was found still invalid.
	Violations []problem.Violation
	// Forced marks a release that skipped the schema; Request is the release's record
	// in the request log.
	Forced  bool
	Request string
}

// Stats are one route's quarantine at a glance.
type Stats struct {
	// Held is how many requests are held, HeldBytes what they count, Oldest when the
	// oldest of them was received (zero when none).
	Held      int       `json:"held"`
	HeldBytes int64     `json:"held_bytes"`
	Oldest    time.Time `json:"oldest,omitzero"`
	// History is how many released and dropped requests are kept; Bytes is what held
	// and history count together.
	History int   `json:"history"`
	Bytes   int64 `json:"bytes"`
}

// Group is one line of a drift report: the violations (or unnamed fields) at one pointer
// with one message.
type Group struct {
	// Kind is "violation" (the schema refused the value) or "unnamed_field" (a field the
	// schema does not name, in an object that allows it).
	Kind string `json:"kind"`
	// Pointer is where (array indices as *); Message what.
	Pointer string `json:"pointer"`
	Message string `json:"message"`
	// Count is how many requests had it; First and Last when it was first and last seen.
	Count int64     `json:"count"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
	// Example is one body that had it (its first ExampleBytes, secret-looking values
	// redacted), the first seen.
	Example string `json:"example,omitempty"`
}

// Kinds of drift.
const (
	KindViolation = "violation"
	KindUnnamed   = "unnamed_field"
)

// GroupKey is a group's identity within its route.
func GroupKey(kind, pointer, message string) string {
	return kind + "\x00" + pointer + "\x00" + message
}

// OtherPointer is the pointer of the group that counts what MaxGroups left out.
const OtherPointer = "(other)"

// Store keeps every route's quarantine and drift report.
type Store interface {
	// Hold stores it (as Held) durably before returning: ErrFull if the route's items
	// would count more than lim.MaxBytes even once its history is evicted.
	Hold(ctx context.Context, it *Item, lim Limits) error
	// Get returns one item.
	Get(ctx context.Context, route, id string) (Item, error)
	// List returns route's items in f.State, oldest first.
	List(ctx context.Context, route string, f Filter) ([]Item, error)
	// Lease takes a held item for a release, for ttl: false when it is not held, or
	// another release holds it. token identifies the lease in Settle.
	Lease(ctx context.Context, route, id, token string, ttl time.Duration) (Item, bool, error)
	// Settle records what a release (holding token's lease) or a drop did; a drop
	// (o.State Dropped, token "") needs no lease but a held item not leased by another.
	// It returns false when the item is not held or its lease is another's.
	Settle(ctx context.Context, route, id, token string, o Outcome, now time.Time) (bool, error)
	// Stats returns route's quarantine at a glance.
	Stats(ctx context.Context, route string) (Stats, error)
	// Trim deletes what lim.MaxAge says is too old, held requests included (returned as
	// expired).
	Trim(ctx context.Context, route string, lim Limits, now time.Time) (expired int, err error)
	// AddDrift adds counts to route's drift report (groups past MaxGroups count in the
	// "(other)" group).
	AddDrift(ctx context.Context, route string, gs []Group) error
	// Drift returns route's drift report, most seen first.
	Drift(ctx context.Context, route string) ([]Group, error)
	// ClearDrift empties route's drift report.
	ClearDrift(ctx context.Context, route string) error
}

// stored is an item as the stores write it: the item and its body.
type stored struct {
	*Item
	Raw []byte `json:"body_raw"`
}

// Encode is how the stores write an item.
func Encode(it *Item) ([]byte, error) { return json.Marshal(stored{Item: it, Raw: it.Body}) }

// Decode reads an item Encode wrote.
func Decode(b []byte) (Item, error) {
	var it Item
	st := stored{Item: &it}
	if err := json.Unmarshal(b, &st); err != nil {
		return Item{}, fmt.Errorf("decoding a quarantined request: %w", err)
	}
	it.Body = st.Raw
	return it, nil
}

// Merge adds d's counts to g (a group of the same key): the counts add up, First is the
// earlier, Last the later, and g keeps its example if it has one.
func Merge(g *Group, d Group) {
	g.Count += d.Count
	if g.First.IsZero() || (!d.First.IsZero() && d.First.Before(g.First)) {
		g.First = d.First
	}
	if d.Last.After(g.Last) {
		g.Last = d.Last
	}
	if g.Example == "" {
		g.Example = d.Example
	}
}

// Other is the group that counts, for its kind, what MaxGroups left out.
func Other(d Group) Group {
	return Group{Kind: d.Kind, Pointer: OtherPointer, Message: "groups beyond the report's " + strconv.Itoa(MaxGroups),
		Count: d.Count, First: d.First, Last: d.Last}
}

// SortGroups orders a report: most seen first, then by pointer and message.
func SortGroups(gs []Group) {
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Count != gs[j].Count {
			return gs[i].Count > gs[j].Count
		}
		if gs[i].Pointer != gs[j].Pointer {
			return gs[i].Pointer < gs[j].Pointer
		}
		return gs[i].Kind+gs[i].Message < gs[j].Kind+gs[j].Message
	})
}

// Apply records on it what a release attempt or a drop did.
func Apply(it *Item, o Outcome, now time.Time) {
	it.State = o.State
	if o.State != Dropped {
		it.Attempts++
		t := now
		it.LastAttempt = &t
		it.LastOutcome, it.LastDetail = o.Outcome, o.Detail
		if o.Violations != nil {
			it.Violations = o.Violations
		}
		if o.Request != "" {
			it.Request = o.Request
		}
	}
	if o.State != Held {
		t := now
		it.Settled = &t
		it.Forced = o.Forced
	}
}

// secretKey matches field names whose values look like secrets; Example redacts them.
var secretKey = regexp.MustCompile(`(?i)pass(word)?|secret|token|api[-_]?key|auth|signature|credential|private`)

// Example is body fit for a drift report: when it is JSON, the string values of fields
// whose names look like secrets (password, token, api_key, …) are redacted; at most
// ExampleBytes of it are kept. A body that is not JSON is not kept.
func Example(body []byte) string {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return ""
	}
	b, err := json.Marshal(redact(doc))
	if err != nil {
		return ""
	}
	if len(b) > ExampleBytes {
		b = b[:ExampleBytes]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}

func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if _, isStr := c.(string); isStr && secretKey.MatchString(k) {
				x[k] = "REDACTED"
				continue
			}
			x[k] = redact(c)
		}
	case []any:
		for i, c := range x {
			x[i] = redact(c)
		}
	}
	return v
}
