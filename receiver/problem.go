package receiver

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Reason names why a request was refused (or how it ended). Reasons are stable strings:
// they label metrics and log lines.
type Reason string

// The reasons a request can end with.
const (
	ReasonAccepted         Reason = "accepted"
	ReasonDuplicate        Reason = "duplicate"
	ReasonInFlight         Reason = "in_flight"
	ReasonMethod           Reason = "method_not_allowed"
	ReasonUnauthorized     Reason = "unauthorized"
	ReasonTooLarge         Reason = "body_too_large"
	ReasonMediaType        Reason = "unsupported_media_type"
	ReasonInvalidJSON      Reason = "invalid_json"
	ReasonSchema           Reason = "schema_violation"
	ReasonMissingEventID   Reason = "missing_event_id"
	ReasonStoreUnavailable Reason = "store_unavailable"
	ReasonBodyRead         Reason = "body_read_error"
	ReasonQueued           Reason = "queued"
	ReasonMissingType      Reason = "missing_event_type"
	ReasonConflict         Reason = "idempotency_conflict"
)

// InboundReasons are the reasons Handle can end a webhook request with (and that the
// Caddy glue's async mode adds: ReasonQueued), for metrics that resolve their series once.
var InboundReasons = []Reason{ReasonAccepted, ReasonQueued, ReasonDuplicate, ReasonInFlight, ReasonMethod,
	ReasonUnauthorized, ReasonTooLarge, ReasonMediaType, ReasonInvalidJSON, ReasonSchema, ReasonMissingEventID,
	ReasonStoreUnavailable, ReasonBodyRead}

// Violation is one schema violation: where in the body (a JSON pointer) and what is wrong.
type Violation struct {
	// Pointer is the RFC 6901 JSON pointer of the offending value ("" for the root).
	Pointer string `json:"pointer"`
	// Message says what is wrong with it.
	Message string `json:"message"`
	// Errors, for a value that matches none of a oneOf's or anyOf's alternatives, are the
	// failures of the closest alternative.
	Errors []Violation `json:"errors,omitempty"`
}

// Problem is an RFC 9457 problem document, the body of every refusal.
type Problem struct {
	// Type is a URI naming the kind of problem (one per Reason).
	Type string `json:"type"`
	// Title is a short human summary of the kind.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Offset is the byte offset of invalid JSON.
	Offset *int64 `json:"offset,omitempty"`
	// Errors lists schema violations.
	Errors []Violation `json:"errors,omitempty"`

	reason  Reason
	headers [][2]string
}

// Reason returns why the problem was raised.
func (p *Problem) Reason() Reason { return p.reason }

// Error makes a Problem usable as an error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

const problemTypeBase = "https://hookgate.dev/problems/"

func newProblem(status int, reason Reason, title, detail string) *Problem {
	return &Problem{
		Type:   problemTypeBase + string(reason),
		Title:  title,
		Status: status,
		Detail: detail,
		reason: reason,
	}
}

func (p *Problem) withHeader(k, v string) *Problem {
	p.headers = append(p.headers, [2]string{k, v})
	return p
}

// Write sends the problem as application/problem+json.
func (p *Problem) Write(w http.ResponseWriter) {
	b, err := json.Marshal(p)
	if err != nil { // cannot happen for these field types
		b = []byte(`{"title":"internal error","status":500}`)
	}
	h := w.Header()
	for _, kv := range p.headers {
		h.Set(kv[0], kv[1])
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}
