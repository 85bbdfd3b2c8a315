package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Receive{})
}

// Receive is the `webhook_receive` handler: it authenticates a webhook, checks its JSON
// body against the sender's schema, computes its event id and dedupes it, then hands the
// request to the next handler (normally reverse_proxy) with the body intact.
//
// Refusals are answered with application/problem+json: 405 (not POST), 401 (no valid
// credential), 413 (body over max_body), 415 (not JSON), 400 (invalid JSON, with the byte
// offset; or a missing event id), 422 (schema violations, each with its JSON pointer). A
// processed duplicate gets 200 with `Webhook-Duplicate: true` and is not handed on; one
// still in flight gets 409 with Retry-After; an unreachable store gets 503 with
// Retry-After (or, with on_store_error accept, the request is handed on undeduped).
//
// Placeholders set for later handlers and logs: {http.webhook.source},
// {http.webhook.event_id}, {http.webhook.verified}, {http.webhook.duplicate},
// {http.webhook.outcome}.
type Receive struct {
	// Preset names a known sender (ploomes, totvs_crm, sintegre, rubeus, standard, github,
	// stripe, shopify, slack) whose schema and event id become the defaults. Optional.
	Preset string `json:"preset,omitempty"`
	// Auth lists the credential lines; a request passes if any one matches. At least one
	// is required ("none" to opt out explicitly).
	Auth []AuthConfig `json:"auth,omitempty"`
	// Schema is an embedded schema name or a JSON Schema file path. Default: the preset's.
	Schema string `json:"schema,omitempty"`
	// EventID lists the event id sources (header:<Name>, json:<pointer>, body_sha256);
	// several make a composite key. Default: the preset's.
	EventID []string `json:"event_id,omitempty"`
	// Dedupe is how long a processed event id is remembered. Default 24h.
	Dedupe caddy.Duration `json:"dedupe,omitempty"`
	// DedupeOff turns dedupe off. Default false (dedupe is on whenever an event id is known).
	DedupeOff bool `json:"dedupe_off,omitempty"`
	// Name identifies this route: it labels it in metrics, logs, the admin API and the
	// dashboard, and is its dedupe scope unless DedupeScope is set. Two routes of one config
	// cannot have the same name. Default: DedupeScope if set, else the preset name, else
	// "webhook".
	Name string `json:"name,omitempty"`
	// DedupeScope namespaces this route's event ids in the store. Routes share ids only
	// when every one of them sets the same DedupeScope (sharing on purpose); a config where
	// a route would fall into another's scope otherwise is refused. Default: the name.
	DedupeScope string `json:"dedupe_scope,omitempty"`
	// ClaimTimeout is how long an event id stays claimed while its request is handed on;
	// if Caddy dies mid-request the claim expires after this. Default 5m.
	ClaimTimeout caddy.Duration `json:"claim_timeout,omitempty"`
	// MaxBody is the largest body accepted, in bytes. Default 5MB (5242880).
	MaxBody int64 `json:"max_body,omitempty"`
	// Mode is "sync" (hand on to the next handler) or "async" (answer 202 once the event
	// is durable in the queue, then deliver it to DeliverTo with retries). Default "sync".
	Mode string `json:"mode,omitempty"`
	// DeliverTo is the internal URL that async mode delivers to (required there). It is
	// trusted: the private-address guard of outbound endpoints does not apply.
	DeliverTo string `json:"deliver_to,omitempty"`
	// DeliverRetry is async mode's retry schedule. Default: the outbound default (5s 5m
	// 30m 2h 5h 10h 10h, with jitter).
	DeliverRetry []caddy.Duration `json:"deliver_retry,omitempty"`
	// DeliverRetryOff makes async mode's first failed attempt final (dead-lettered).
	DeliverRetryOff bool `json:"deliver_retry_off,omitempty"`
	// DeliverTimeout bounds the wait for the internal app's answer. Default 60s.
	DeliverTimeout caddy.Duration `json:"deliver_timeout,omitempty"`
	// DeliverBreaker is async mode's circuit breaker. Default: on, with the defaults of
	// sender.BreakerConfig.
	DeliverBreaker *sender.BreakerConfig `json:"deliver_breaker,omitempty"`
	// OnStoreError is "reject" (503) or "accept" (hand on without dedupe, log a warning)
	// when the store cannot be reached. Default "reject".
	OnStoreError string `json:"on_store_error,omitempty"`
	// RejectCaseDuplicates refuses (400) a body with an object whose keys differ only in
	// case, {"id":"a","ID":"b"}: Go's encoding/json and other decoders match keys
	// case-insensitively, so the backend could read a value the schema never saw. Exact
	// duplicate keys are always refused. Default: on for routes with a schema, off otherwise.
	RejectCaseDuplicates *bool `json:"reject_case_duplicates,omitempty"`
	// LogAccepted is "sampled" or "all". The per-webhook INFO line is always written for a
	// refusal, a duplicate, an error or a non-2xx backend answer; for accepted (and queued)
	// webhooks answered 2xx, "sampled" writes
	// the first 100 lines of each second and then one in 100, since one write per webhook
	// through Caddy's log writer is a measurable share of a webhook's cost at high rates.
	// The metrics and the admin counters count every webhook either way. Default "sampled".
	LogAccepted string `json:"log_accepted,omitempty"`
	// Transform is a CEL expression over `body`, `headers`, `route` and `event_id` whose
	// result (a JSON object or list, or with_headers(body, headers)) is the body handed on
	// (sync) or queued (async), after the checks and the dedupe claim. Default: none.
	Transform string `json:"transform,omitempty"`
	// OnInvalid is what a body the schema refuses gets: "reject" (422) or "quarantine"
	// (held, 202, handed on when released; docs/quarantine.md). Default "reject".
	OnInvalid string `json:"on_invalid,omitempty"`
	// Quarantine is the quarantine's retention. Default: see gateway.QuarantineConfig.
	Quarantine *gateway.QuarantineConfig `json:"quarantine,omitempty"`
	// OrderBy is the stale-event guard's order value: a source as for event_id, prefixed
	// with how it compares (time:, int: or string:; default time:), e.g.
	// "time:json:/timestamp"; "off" turns the preset's guard off. Default: the preset's
	// (totvs_crm: time:json:/timestamp by json:/source/row/id), else none.
	OrderBy string `json:"order_by,omitempty"`
	// OrderKey are the sources of the record whose events are ordered. Required with
	// OrderBy (unless the preset gives them).
	OrderKey []string `json:"order_key,omitempty"`
	// OrderWindow is how long a record's newest order value is remembered. Default: the
	// dedupe window (24h).
	OrderWindow caddy.Duration `json:"order_window,omitempty"`
	// OrderMaxAhead is how far ahead of this gateway's clock a time order value may be and
	// still be recorded; an event beyond it is handed on without being recorded (outcome
	// order_ahead), so a wrong date or a fast clock cannot make its record's later events
	// stale. Default 1m.
	OrderMaxAhead caddy.Duration `json:"order_max_ahead,omitempty"`
	// LogRequests is how many of the route's latest requests the request log keeps (see
	// the admin API's /webhooks/inbound/<route>/requests). 0 means the default, 200;
	// negative turns the log off.
	LogRequests int `json:"log_requests,omitempty"`
	// LogBody is how many bytes of each body the request log keeps; longer bodies are cut
	// (and cannot be replayed). Default 16KB; negative keeps none.
	LogBody int64 `json:"log_body,omitempty"`

	route *gateway.Route
}

// AuthConfig is one credential line. Secrets should be placeholders ({env.NAME},
// {file./path}): they are expanded at provision, so the JSON config never holds them.
type AuthConfig struct {
	// Method is validation_key, header, bearer, basic, query, hmac or none.
	Method string `json:"method"`
	// Name is the header name (header) or query parameter (query).
	Name string `json:"name,omitempty"`
	// User is the user name (basic).
	User string `json:"user,omitempty"`
	// Secret is the key, header value, token, password or query value.
	Secret string `json:"secret,omitempty"`
	// Scheme is the signature scheme (hmac): standard, github, stripe, shopify, slack, generic.
	Scheme string `json:"scheme,omitempty"`
	// Secrets are the signing secrets (hmac); several allow rotation.
	Secrets []string `json:"secrets,omitempty"`
	// Header is the signature header (hmac generic).
	Header string `json:"header,omitempty"`
	// Algorithm is sha256 or sha512 (hmac generic). Default sha256.
	Algorithm string `json:"algorithm,omitempty"`
	// Tolerance bounds timestamp skew (hmac standard, stripe, slack). Default 5m.
	Tolerance caddy.Duration `json:"tolerance,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Receive) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_receive",
		New: func() caddy.Module { return new(Receive) },
	}
}

// expandSecret resolves a secret's placeholders; an unset or empty one is an error that
// names the placeholder, never the value.
func expandSecret(repl *caddy.Replacer, what, s string, logger *zap.Logger) (string, error) {
	if s == "" {
		return "", nil
	}
	out, err := repl.ReplaceOrErr(s, true, true)
	if err != nil {
		return "", fmt.Errorf("%s: %v", what, err)
	}
	if out == s && !strings.Contains(s, "{") {
		logger.Warn("a secret is written literally in the config; it is visible in the admin API's /config/: use {env.NAME} or {file./path}",
			zap.String("where", what))
	}
	return out, nil
}

// authSpecs translates credential lines, expanding their secrets' placeholders.
func authSpecs(lines []AuthConfig, logger *zap.Logger) ([]receiver.AuthSpec, error) {
	repl := caddy.NewReplacer()
	var out []receiver.AuthSpec
	for i, a := range lines {
		what := fmt.Sprintf("auth line %d (%s)", i+1, a.Method)
		spec := receiver.AuthSpec{Kind: receiver.AuthKind(a.Method), Name: a.Name, User: a.User,
			Scheme: a.Scheme, Header: a.Header, Algorithm: a.Algorithm, Tolerance: time.Duration(a.Tolerance)}
		var err error
		if spec.Secret, err = expandSecret(repl, what, a.Secret, logger); err != nil {
			return nil, err
		}
		if spec.User, err = repl.ReplaceOrErr(a.User, true, true); err != nil {
			return nil, fmt.Errorf("%s user: %v", what, err)
		}
		for _, s := range a.Secrets {
			v, err := expandSecret(repl, what, s, logger)
			if err != nil {
				return nil, err
			}
			spec.Secrets = append(spec.Secrets, v)
		}
		out = append(out, spec)
	}
	return out, nil
}

// Validate judges the config as written, JSON or Caddyfile alike.
func (h *Receive) Validate() error {
	switch h.Mode {
	case "", "sync":
	case "async":
		if h.DeliverTo == "" {
			return fmt.Errorf("mode async needs deliver_to <url>: where queued events are delivered")
		}
	default:
		return fmt.Errorf("mode %q: sync or async", h.Mode)
	}
	if (h.DeliverTo != "" || len(h.DeliverRetry) > 0 || h.DeliverRetryOff || h.DeliverTimeout != 0 || h.DeliverBreaker != nil) && h.Mode != "async" {
		return fmt.Errorf("deliver_to is for mode async; in sync mode the next handler (reverse_proxy) delivers")
	}
	switch h.OnStoreError {
	case "", "reject", "accept":
	default:
		return fmt.Errorf("on_store_error %q: reject or accept", h.OnStoreError)
	}
	if h.DeliverTimeout < 0 || h.Dedupe < 0 {
		return fmt.Errorf("dedupe and deliver_to response_timeout must be positive durations")
	}
	if _, err := retrySchedule(h.DeliverRetryOff, h.DeliverRetry); err != nil {
		return fmt.Errorf("deliver_to: %v", err)
	}
	if _, err := h.DeliverBreaker.Policy(); err != nil {
		return fmt.Errorf("deliver_to: %v", err)
	}
	spec := h.spec()
	return spec.Validate()
}

// spec translates the config into the gateway's route spec; the credential lines' secrets
// are expanded by Provision.
func (h *Receive) spec() gateway.RouteSpec {
	o := receiver.Options{Preset: h.Preset, Schema: h.Schema, EventID: h.EventID, MaxBody: h.MaxBody,
		Dedupe: time.Duration(h.Dedupe), ClaimTTL: time.Duration(h.ClaimTimeout), OrderWindow: time.Duration(h.OrderWindow),
		OrderMaxAhead: time.Duration(h.OrderMaxAhead), AcceptOnStoreError: h.OnStoreError == "accept"}
	if h.DedupeOff {
		o.Dedupe = -1
	}
	switch h.OrderBy {
	case "off":
		o.OrderOff = true
	case "":
	default:
		kind, src := receiver.ParseOrderSource(h.OrderBy)
		o.Order = &receiver.OrderSpec{Kind: kind, Value: src, Keys: h.OrderKey}
	}
	if h.RejectCaseDuplicates != nil {
		o.CaseDuplicates = receiver.CaseAllow
		if *h.RejectCaseDuplicates {
			o.CaseDuplicates = receiver.CaseReject
		}
	}
	for _, a := range h.Auth {
		o.Auth = append(o.Auth, receiver.AuthSpec{Kind: receiver.AuthKind(a.Method), Tolerance: time.Duration(a.Tolerance)})
	}
	return gateway.RouteSpec{Name: h.Name, DedupeScope: h.DedupeScope, LogRequests: h.LogRequests, LogBody: h.LogBody,
		LogAccepted: h.LogAccepted, Transform: h.Transform, OnInvalid: h.OnInvalid, Quarantine: h.Quarantine, Receiver: o}
}

// Provision compiles the schema, resolves secrets and registers the route.
func (h *Receive) Provision(ctx caddy.Context) error {
	logger := ctx.Logger()
	if err := h.Validate(); err != nil { // nothing is built from a config Validate refuses
		return err
	}
	spec := h.spec()
	spec.Logger = logger
	var err error
	if spec.Receiver.Auth, err = authSpecs(h.Auth, logger); err != nil {
		return err
	}
	if h.Mode == "async" {
		target, err := caddy.NewReplacer().ReplaceOrErr(h.DeliverTo, true, true)
		if err != nil {
			return fmt.Errorf("deliver_to: %v", err)
		}
		spec.Async = &sender.Endpoint{URL: target, ResponseTimeout: time.Duration(h.DeliverTimeout)}
		spec.Async.Retry, _ = retrySchedule(h.DeliverRetryOff, h.DeliverRetry)
		spec.Async.Breaker, _ = h.DeliverBreaker.Policy()
	}
	appIface, err := ctx.App("webhooks")
	if err != nil {
		return fmt.Errorf("loading the webhooks app: %v", err)
	}
	h.route, err = appIface.(*App).Gateway().AddRoute(spec)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Receive) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var ph gateway.Placeholders
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok && repl != nil {
		ph = repl
	}
	var srv http.Handler
	if s, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && s != nil {
		srv = s
	}
	return h.route.Serve(w, r, next, ph, srv)
}

var (
	_ caddy.Provisioner           = (*Receive)(nil)
	_ caddy.Validator             = (*Receive)(nil)
	_ caddyhttp.MiddlewareHandler = (*Receive)(nil)
)
