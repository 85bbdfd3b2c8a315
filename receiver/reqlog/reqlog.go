// Package reqlog is the inbound request log: each webhook_receive route keeps its latest
// requests (what came in, how it ended, why it was refused), for operators who must answer
// "we sent it" with evidence, and to replay one to the backend.
//
// Recording is cheap on the request path: an Entry keeps references (the request's header
// map, its query) and the redaction of credentials happens later, when the entry is read
// (memory) or written (Redis, in batches off the request path).
package reqlog

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/problem"
)

// Defaults.
const (
	// DefaultLimit is how many requests a route keeps.
	DefaultLimit = 200
	// DefaultBody is how many bytes of a body are kept.
	DefaultBody = 16 << 10
	// DefaultMaxBytes bounds the whole log, every route together: 32 MiB.
	DefaultMaxBytes = 32 << 20
)

// ErrNotFound: no such record. It is storeerr.ErrNotFound, shared by every store.
var ErrNotFound = storeerr.ErrNotFound

// Stages are stage latencies in milliseconds.
type Stages struct {
	Auth     float64 `json:"auth"`
	Parse    float64 `json:"parse"`
	Validate float64 `json:"validate"`
	Store    float64 `json:"store"`
	// Transform is the route's transform, on routes with one.
	Transform float64 `json:"transform,omitempty"`
	Total     float64 `json:"total"`
}

// Record is one request as the log shows it.
type Record struct {
	// ID identifies the record ("req_" and time-ordered hex).
	ID string `json:"id"`
	// Route is the webhook_receive route's name.
	Route string `json:"route"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// Remote is the client's address.
	Remote string `json:"remote"`
	// Method, Host and URI (path and query, credential query values redacted).
	Method string `json:"method"`
	Host   string `json:"host"`
	URI    string `json:"uri"`
	// TLS is true when the request came over TLS.
	TLS bool `json:"tls,omitempty"`
	// Outcome is accepted, queued, duplicate, stale, or the refusal's reason.
	Outcome string `json:"outcome"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// Detail and Errors are the refusal's problem detail and violations (JSON pointers).
	Detail string              `json:"detail,omitempty"`
	Errors []problem.Violation `json:"errors,omitempty"`
	// EventID is the event id computed, if any.
	EventID string `json:"event_id,omitempty"`
	// QueuedEventID and QueuedDelivery name the queued event and its delivery of a request
	// an async route queued (the queue gives the event an id of its own).
	QueuedEventID  string `json:"queued_event_id,omitempty"`
	QueuedDelivery string `json:"queued_delivery,omitempty"`
	// OrderKey and OrderValue are the record key and order value (as received) the
	// stale-event guard found, on routes with one (see the admin API's …/order?key=).
	OrderKey   string `json:"order_key,omitempty"`
	OrderValue string `json:"order_value,omitempty"`
	// Stages are the stage latencies.
	Stages Stages `json:"stages_ms"`
	// Header is the request's headers, every credential redacted.
	Header http.Header `json:"headers"`
	// Body is the body as text, or BodyBase64 when it is not UTF-8; BodySize is its full
	// size, BodyCut tells it was longer than what was kept.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
	BodySize   int    `json:"body_bytes"`
	BodyCut    bool   `json:"body_cut,omitempty"`
	// Transformed is the body the route's transform made of Body (what the backend or the
	// queue got), TransformedSize its full size; empty when no transform ran or it failed
	// (then Outcome is transform_failed and Detail says why). A replay runs the route's
	// transform of the day again on Body.
	Transformed     string `json:"transformed_body,omitempty"`
	TransformedSize int    `json:"transformed_bytes,omitempty"`
	// Replayable is true for a request that passed authentication and validation and whose
	// whole body was kept.
	Replayable bool `json:"replayable"`
	// Replay marks a replay from the admin API; ReplayOf is the record replayed; Forced
	// tells that dedupe (and the order guard) were skipped.
	Replay   bool   `json:"replay,omitempty"`
	ReplayOf string `json:"replay_of,omitempty"`
	Forced   bool   `json:"forced,omitempty"`
}

// BodyBytes returns the kept body.
func (r *Record) BodyBytes() []byte {
	if r.BodyBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(r.BodyBase64)
		return b
	}
	return []byte(r.Body)
}

// Redactor hides a route's credentials: the headers and query parameters they travel in.
type Redactor struct {
	headers map[string]bool
	query   []string
}

// NewRedactor redacts credential.Headers, headers and the query parameters named query,
// the latter in any case (the auth reads one exact name, but a sender that writes ?KEY=
// still sends its secret).
func NewRedactor(headers, query []string) *Redactor {
	r := &Redactor{headers: map[string]bool{}, query: query}
	for _, h := range slices.Concat(credential.Headers, headers) {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	return r
}

// Header returns a copy of h with the credentials redacted.
func (r *Redactor) Header(h http.Header) http.Header { return r.header(h) }

// URI returns path and query, credential query values redacted.
func (r *Redactor) URI(path, rawQuery string) string { return r.uri(path, rawQuery) }

func (r *Redactor) header(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if r.headers[k] {
			out[k] = []string{credential.Redacted}
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (r *Redactor) uri(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	q, ok := credential.RedactQuery(rawQuery, r.query)
	if !ok {
		return path + "?(unparsable query)"
	}
	return path + "?" + q
}

// Entry is a request as recorded on the request path: a Record whose header and query
// are still raw. Materialize makes the Record.
type Entry struct {
	Record
	// RawHeader is the request's header map (not copied: the request is over when the
	// entry is materialized, and nothing writes to it any more).
	RawHeader http.Header
	Path      string
	RawQuery  string
	Redact    *Redactor
	RawBody   []byte

	seq  uint64 // Memory: the record's number in arrival order
	size int64  // Memory: its cost, while it is held
}

// entryOverhead is what a record costs besides its variable parts: the Entry and the
// Record, the header map's buckets, the id, the strings' headers.
const entryOverhead = 1024

// cost is how many bytes the entry holds on to: the kept body, the request's headers (the
// map is the request's, kept alive by the entry), the URI, the problem and its
// violations, and entryOverhead. It allocates nothing.
func (e *Entry) cost() int64 {
	n := entryOverhead + len(e.RawBody) + len(e.Transformed) + len(e.Path) + len(e.RawQuery) + len(e.Remote) + len(e.Host) + len(e.Detail) + len(e.EventID)
	for k, vs := range e.RawHeader {
		n += len(k) + 48 // the key, its slice header and a map slot
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	n += violationsCost(e.Errors)
	return int64(n)
}

func violationsCost(vs []problem.Violation) int {
	n := 0
	for _, v := range vs {
		n += 64 + len(v.Pointer) + len(v.Message) + violationsCost(v.Errors)
	}
	return n
}

// Materialize returns the record with credentials redacted.
func (e *Entry) Materialize() Record {
	rec := e.Record
	rec.Header = e.Redact.header(e.RawHeader)
	rec.URI = e.Redact.uri(e.Path, e.RawQuery)
	if utf8.Valid(e.RawBody) {
		rec.Body = string(e.RawBody)
	} else {
		rec.BodyBase64 = base64.StdEncoding.EncodeToString(e.RawBody)
	}
	return rec
}

var (
	idPrefix = strconv.FormatInt(time.Now().UnixNano()%0xfffff, 16)
	idSeq    atomic.Uint64
)

// NewID returns a record id, time-ordered within an instance and unique across instances.
func NewID(now time.Time) string {
	return "req_" + strconv.FormatInt(now.UnixMilli(), 16) + idPrefix + strconv.FormatUint(idSeq.Add(1), 36)
}

// Filter selects records.
type Filter struct {
	// Outcome keeps records with this outcome ("" all; "refused" every refusal).
	Outcome string
	// ID, if set, keeps the record with this id, event id, queued event id or queued
	// delivery id (the console's search).
	ID string
	// Limit caps the answer. Default 50.
	Limit int
}

// Match reports whether rec passes f.
func (f Filter) Match(rec *Record) bool {
	if f.ID != "" && rec.ID != f.ID && rec.EventID != f.ID && rec.QueuedEventID != f.ID && rec.QueuedDelivery != f.ID {
		return false
	}
	switch f.Outcome {
	case "":
		return true
	case "refused":
		return rec.Status >= 400 && !strings.HasPrefix(rec.Outcome, "accepted")
	}
	return rec.Outcome == f.Outcome
}

// Log keeps the latest requests of each route.
type Log interface {
	// SetLimit sets how many records route keeps.
	SetLimit(route string, n int)
	// SetMaxBytes bounds the size of the whole log, every route together (n <= 0: the
	// default, DefaultMaxBytes); the oldest records are dropped first.
	SetMaxBytes(n int64)
	// Add records e. It never blocks on the network.
	Add(e *Entry)
	// List returns route's records, newest first.
	List(ctx context.Context, route string, f Filter) ([]Record, error)
	// Get returns one record.
	Get(ctx context.Context, route, id string) (Record, error)
}
