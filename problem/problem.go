// Package problem is Hookgate's RFC 9457 problem+json answer, shared by the inbound core
// (refusals of webhooks), the outbound core (publish and async hand-off failures) and the
// Caddy glue.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// TypeBase starts every problem's type URI; the reason follows.
const TypeBase = "https://hookgate.dev/problems/"

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
	// Type is a URI naming the kind of problem (TypeBase + the reason).
	Type string `json:"type"`
	// Title is a short human summary of the kind.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Offset is the byte offset of invalid JSON.
	Offset *int64 `json:"offset,omitempty"`
	// Instance identifies this occurrence: the id of a quarantined request.
	Instance string `json:"instance,omitempty"`
	// Errors lists schema violations.
	Errors []Violation `json:"errors,omitempty"`

	reason  Reason
	headers [][2]string
}

// New returns a problem with the given status, reason (a stable snake_case name that also
// labels metrics and logs), title and detail.
func New(status int, reason Reason, title, detail string) *Problem {
	return &Problem{Type: TypeBase + string(reason), Title: title, Status: status, Detail: detail, reason: reason}
}

// Reason returns why the problem was raised.
func (p *Problem) Reason() Reason { return p.reason }

// WithHeader adds a header to send with the problem (Allow, Retry-After, …).
func (p *Problem) WithHeader(k, v string) *Problem {
	p.headers = append(p.headers, [2]string{k, v})
	return p
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
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
