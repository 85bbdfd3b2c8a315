// Package subscription makes outbound endpoints a run-time object: subscriptions created,
// changed and deleted through an HTTP API (Caddy's admin endpoint or a site route), kept
// in the webhooks store (the embedded file or Redis, shared by every instance), and turned
// into endpoints of the sender's registry, beside the configured ones. It never imports
// Caddy.
package subscription

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/transform"
)

// Limits on what a subscription may hold.
const (
	// MaxBody is the largest request body the API reads.
	MaxBody = 64 << 10
	// MaxURL is the longest URL.
	MaxURL = 2048
	// MaxEvents is how many event patterns one subscription may have.
	MaxEvents = 100
	// MaxHeaders is how many extra headers one subscription may send.
	MaxHeaders = 20
	// MaxMetadata is how many metadata entries one subscription may carry.
	MaxMetadata = 50
	// MaxRetries is the longest retry schedule.
	MaxRetries = 30
	// MaxRetryDelay is the longest delay of a retry schedule.
	MaxRetryDelay = 7 * 24 * time.Hour
	// DefaultGrace is how long a rotated secret keeps signing.
	DefaultGrace = 24 * time.Hour
)

// Subscription is one subscriber's endpoint, as stored.
type Subscription struct {
	// ID is "sub_" and 26 hex characters, time-ordered; it names the endpoint everywhere
	// (deliveries, metrics, the admin API).
	ID string `json:"id"`
	// URL is where events are POSTed.
	URL string `json:"url"`
	// Events are glob patterns on the event type; empty means every event.
	Events []string `json:"events,omitempty"`
	// Filter is a CEL expression over type, data and headers; empty means none.
	Filter string `json:"filter,omitempty"`
	// Transform is a CEL transform (package transform, outbound side) of the events
	// queued for it; empty means none.
	Transform string `json:"transform,omitempty"`
	// Headers are sent with every delivery.
	Headers map[string]string `json:"headers,omitempty"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
	// RateLimit caps attempts per instance, "<n>/<unit>"; empty means none.
	RateLimit string `json:"rate_limit,omitempty"`
	// Retry is the retry schedule as durations ("5s", "5m"); nil means the default, empty
	// means a single attempt.
	Retry []string `json:"retry"`
	// Breaker is the subscription's circuit breaker; nil means on, with the defaults.
	Breaker *sender.BreakerConfig `json:"breaker,omitempty"`
	// Metadata is free key/value data for the subscriber's own use.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Secret is the whsec_ signing secret. It is stored, and shown only when created or
	// rotated.
	Secret string `json:"secret"`
	// Retired are rotated-out secrets that still sign until their grace ends.
	Retired []Retired `json:"retired,omitempty"`
	// Created and Updated are when it was created and last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Version counts its changes.
	Version int64 `json:"version"`
}

// Retired is a rotated-out secret in its grace period.
type Retired struct {
	// Secret is the old secret.
	Secret string `json:"secret"`
	// Until is when it stops signing.
	Until time.Time `json:"until"`
}

// IDPrefix starts every subscription id; configured endpoint names may not use it.
const IDPrefix = sender.SubscriptionPrefix

// NewID returns a fresh subscription id.
func NewID() string { return IDPrefix + strings.TrimPrefix(queue.NewEventID(), "evt_") }

// IsID reports whether s has the shape of a subscription id.
func IsID(s string) bool {
	if len(s) != len(IDPrefix)+26 || !strings.HasPrefix(s, IDPrefix) {
		return false
	}
	_, err := hex.DecodeString(s[len(IDPrefix):])
	return err == nil
}

// NewSecret returns a fresh Standard Webhooks secret: whsec_ and 32 random bytes in base64.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// Endpoint is the subscription as the sender's registry holds it, with the SSRF guard
// unless allowPrivate, and retired secrets still in their grace at now.
func (s *Subscription) Endpoint(allowPrivate bool, now time.Time) (*sender.Endpoint, error) {
	e := &sender.Endpoint{Name: s.ID, URL: s.URL, Events: s.Events, Filter: s.Filter, Transform: s.Transform,
		Description: s.Description, Subscription: true, AllowPrivate: allowPrivate, SigningSecrets: []string{s.Secret}}
	if len(s.Headers) > 0 {
		e.Header = http.Header{}
		for k, v := range s.Headers {
			e.Header.Set(k, v)
		}
	}
	for _, r := range s.Retired {
		if r.Until.After(now) {
			e.RetiredSecrets = append(e.RetiredSecrets, sender.RetiredSecret{Secret: r.Secret, Until: r.Until})
		}
	}
	if s.RateLimit != "" {
		r, err := sender.ParseRate(s.RateLimit)
		if err != nil {
			return nil, err
		}
		e.RatePerSecond = r
	}
	if s.Retry != nil {
		e.Retry = make([]time.Duration, 0, len(s.Retry))
		for _, d := range s.Retry {
			v, err := time.ParseDuration(d)
			if err != nil {
				return nil, err
			}
			e.Retry = append(e.Retry, v)
		}
	}
	b, err := s.Breaker.Policy()
	if err != nil {
		return nil, err
	}
	e.Breaker = b
	return e, e.Prepare()
}

// Input is a create or a change, as the API reads it: absent fields are nil.
type Input struct {
	URL         *string               `json:"url"`
	Events      *[]string             `json:"events"`
	Filter      *string               `json:"filter"`
	Transform   *string               `json:"transform"`
	Headers     *map[string]string    `json:"headers"`
	Description *string               `json:"description"`
	RateLimit   *string               `json:"rate_limit"`
	Retry       *[]string             `json:"retry"`
	Breaker     *sender.BreakerConfig `json:"breaker"`
	Metadata    *map[string]string    `json:"metadata"`
	Secret      *string               `json:"secret"`
}

// InputError is a refused input: every field that is wrong, each with what is wrong.
type InputError struct {
	// Status is 400 for a body that is not the expected JSON, 413 for one too large, 422
	// for fields with wrong values.
	Status int
	// Violations name the fields (as JSON pointers) and their faults.
	Violations []problem.Violation
	// Detail sums it up.
	Detail string
	// Reason, if set, names the problem instead of the status's default.
	Reason problem.Reason
}

func (e *InputError) Error() string { return e.Detail }

// Problem is the error as problem+json.
func (e *InputError) Problem() *problem.Problem {
	reason, title := problem.ReasonInvalidSubscription, "Unprocessable Content"
	switch e.Status {
	case http.StatusBadRequest:
		reason, title = problem.ReasonInvalidJSON, "Bad Request"
	case http.StatusRequestEntityTooLarge:
		reason, title = problem.ReasonTooLarge, "Content Too Large"
	}
	if e.Reason != "" {
		reason = e.Reason
	}
	p := problem.New(e.Status, reason, title, e.Detail)
	p.Errors = e.Violations
	return p
}

type checker struct{ v []problem.Violation }

func (c *checker) fail(pointer, format string, args ...any) {
	c.v = append(c.v, problem.Violation{Pointer: pointer, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.v) == 0 {
		return nil
	}
	parts := make([]string, len(c.v))
	for i, v := range c.v {
		parts[i] = strings.TrimPrefix(v.Pointer, "/") + ": " + v.Message
	}
	return &InputError{Status: http.StatusUnprocessableEntity, Violations: c.v, Detail: strings.Join(parts, "; ")}
}

// hopByHop and signing headers cannot be set by a subscriber.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true, "Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "User-Agent": true,
}

// apply validates in and writes it onto s (a new subscription, or a copy of the stored one
// for a change). allowPrivate is the operator's relaxation of the address check.
func (in *Input) apply(s *Subscription, creating, allowPrivate bool) error {
	c := &checker{}
	if in.URL == nil && creating {
		c.fail("/url", "required")
	}
	if in.URL != nil {
		checkURL(c, *in.URL, allowPrivate)
		s.URL = *in.URL
	}
	if in.Events != nil {
		if len(*in.Events) > MaxEvents {
			c.fail("/events", "at most %d patterns", MaxEvents)
		}
		for i, p := range *in.Events {
			if _, err := path.Match(p, ""); err != nil || p == "" || !sender.ValidEventType(strings.ReplaceAll(p, " ", "_")) {
				c.fail(fmt.Sprintf("/events/%d", i), "%q is not a valid glob pattern (path.Match syntax: *, ?, [a-z], \\ escapes)", p)
			}
		}
		s.Events = append([]string(nil), (*in.Events)...)
		if len(s.Events) == 1 && s.Events[0] == "*" {
			s.Events = nil
		}
	}
	if in.Filter != nil {
		if *in.Filter != "" {
			if _, err := sender.CompileFilter(*in.Filter); err != nil {
				c.fail("/filter", "%v", err)
			}
		}
		s.Filter = *in.Filter
	}
	if in.Transform != nil {
		if *in.Transform != "" {
			if _, err := transform.Compile(transform.Outbound, *in.Transform); err != nil {
				c.fail("/transform", "%v", err)
			}
		}
		s.Transform = *in.Transform
	}
	if in.Headers != nil {
		if len(*in.Headers) > MaxHeaders {
			c.fail("/headers", "at most %d headers", MaxHeaders)
		}
		for k, v := range *in.Headers {
			ptr := "/headers/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			switch {
			case !validToken(k):
				c.fail(ptr, "%q is not a valid header name", k)
			case reservedHeaders[http.CanonicalHeaderKey(k)]:
				c.fail(ptr, "%s is set by Hookgate and cannot be overridden", http.CanonicalHeaderKey(k))
			case strings.ContainsAny(v, "\r\n\x00") || len(v) > 4096:
				c.fail(ptr, "the value must be one line of at most 4096 characters")
			}
		}
		s.Headers = *in.Headers
	}
	if in.Description != nil {
		if len(*in.Description) > 1024 {
			c.fail("/description", "at most 1024 characters")
		}
		s.Description = *in.Description
	}
	if in.RateLimit != nil {
		if *in.RateLimit != "" {
			if _, err := sender.ParseRate(*in.RateLimit); err != nil {
				c.fail("/rate_limit", "want <n>/<unit> with unit s, m or h, e.g. 10/s")
			}
		}
		s.RateLimit = *in.RateLimit
	}
	if in.Retry != nil {
		if len(*in.Retry) > MaxRetries {
			c.fail("/retry", "at most %d delays", MaxRetries)
		}
		for i, d := range *in.Retry {
			v, err := time.ParseDuration(d)
			if err != nil || v < time.Second || v > MaxRetryDelay {
				c.fail(fmt.Sprintf("/retry/%d", i), "%q: a duration from 1s to 168h, e.g. \"5s\", \"5m\", \"2h\"", d)
			}
		}
		s.Retry = append([]string{}, (*in.Retry)...)
	}
	if in.Breaker != nil {
		if _, err := in.Breaker.Policy(); err != nil {
			c.fail("/breaker", "%v", err)
		}
		b := *in.Breaker
		s.Breaker = &b
	}
	if in.Metadata != nil {
		if len(*in.Metadata) > MaxMetadata {
			c.fail("/metadata", "at most %d entries", MaxMetadata)
		}
		s.Metadata = *in.Metadata
	}
	if in.Secret != nil {
		if !creating {
			c.fail("/secret", "a secret is changed with rotate-secret")
		} else if err := checkSecret(*in.Secret); err != nil {
			c.fail("/secret", "%v", err)
		}
		s.Secret = *in.Secret
	}
	return c.err()
}

func checkSecret(s string) error {
	raw, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return errors.New(`must be "whsec_" followed by base64`)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return errors.New(`must be "whsec_" followed by base64`)
	}
	if len(b) < 24 || len(b) > 64 {
		return fmt.Errorf("the key must be 24 to 64 bytes; it is %d", len(b))
	}
	return nil
}

func checkURL(c *checker, raw string, allowPrivate bool) {
	if len(raw) > MaxURL {
		c.fail("/url", "longer than %d characters", MaxURL)
		return
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		c.fail("/url", "not an absolute URL")
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		c.fail("/url", "the scheme must be http or https, not %q", u.Scheme)
		return
	}
	if u.User != nil {
		c.fail("/url", "must not carry credentials (user:password@); send them with headers")
		return
	}
	if u.Fragment != "" {
		c.fail("/url", "must not have a #fragment")
		return
	}
	if allowPrivate {
		return
	}
	host := strings.Trim(u.Hostname(), "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := sender.Blocked(ip); why != "" {
			c.fail("/url", "%s is %s; subscriptions may only target public addresses", host, why)
		}
	}
	// A name is judged at delivery, on the address it resolves to then (DNS can change).
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
