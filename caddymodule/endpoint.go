package caddymodule

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/sender"
	"go.uber.org/zap"
)

// EndpointConfig is one outbound endpoint: where published events of matching types are
// delivered.
type EndpointConfig struct {
	// Name identifies the endpoint in the admin API, metrics and delivery ids: 1-64
	// letters, digits, '_', '-' or '.'. Required.
	Name string `json:"name"`
	// URL is where events are POSTed (http or https). Required.
	URL string `json:"url"`
	// Events are glob patterns on the event type ("contact.*"). Default: every event.
	Events []string `json:"events,omitempty"`
	// Filter is a CEL expression over the event's `type`, `data` (the published JSON) and
	// `headers` (the publish request's, lower-case names); only events it is true for are
	// delivered. Compiled at provision. Default: none.
	Filter string `json:"filter,omitempty"`
	// Transform is a CEL expression over `body`, `type`, `event_id` and `endpoint` whose
	// result is what this endpoint's deliveries store, sign and send. Default: none.
	Transform string `json:"transform,omitempty"`
	// Headers are added to every delivery. Values may be placeholders ({env.NAME}),
	// expanded at provision.
	Headers http.Header `json:"headers,omitempty"`
	// BasicAuth sends HTTP Basic credentials. The password should be a placeholder.
	BasicAuth *BasicAuthConfig `json:"basic_auth,omitempty"`
	// Sign signs every delivery. Only the "standard" scheme (Standard Webhooks) exists.
	Sign *SignConfig `json:"sign,omitempty"`
	// ConnectTimeout bounds DNS, TCP connect and TLS. Default 5s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
	// ResponseTimeout bounds the wait for the answer. Default 60s.
	ResponseTimeout caddy.Duration `json:"response_timeout,omitempty"`
	// Retry is the retry schedule: the delay before each further attempt; the delivery
	// is dead-lettered after the last. Default 5s 5m 30m 2h 5h 10h 10h, each with ±20%
	// jitter.
	Retry []caddy.Duration `json:"retry,omitempty"`
	// RetryOff makes the first failed attempt final (dead-lettered). Default false.
	RetryOff bool `json:"retry_off,omitempty"`
	// RateLimit caps attempts, as "<n>/<unit>" (unit s, m or h), per Caddy instance.
	// Default: no limit.
	RateLimit string `json:"rate_limit,omitempty"`
	// AllowPrivate permits loopback, private, link-local, unique-local, CGNAT and
	// cloud-metadata targets. Default false: such addresses are refused at dial time.
	AllowPrivate bool `json:"allow_private,omitempty"`
	// Concurrency is how many attempts to this endpoint run at once per instance.
	// Default 16.
	Concurrency int `json:"concurrency,omitempty"`
	// Breaker is the endpoint's circuit breaker. Default: on, with the defaults of
	// sender.BreakerConfig.
	Breaker *sender.BreakerConfig `json:"breaker,omitempty"`
}

// BasicAuthConfig holds HTTP Basic credentials.
type BasicAuthConfig struct {
	// Username is the user name.
	Username string `json:"username"`
	// Password is the password; use a placeholder ({env.NAME}).
	Password string `json:"password"`
}

// SignConfig configures delivery signatures.
type SignConfig struct {
	// Scheme is "standard" (Standard Webhooks). Default "standard".
	Scheme string `json:"scheme,omitempty"`
	// Secrets are whsec_ secrets; every one signs (rotation). Use placeholders.
	Secrets []string `json:"secrets"`
}

// retrySchedule turns a configured schedule into the sender's: nil means the default,
// off means none (one attempt).
func retrySchedule(off bool, delays []caddy.Duration) ([]time.Duration, error) {
	if off {
		return []time.Duration{}, nil
	}
	if len(delays) == 0 {
		return nil, nil
	}
	out := make([]time.Duration, 0, len(delays))
	for _, d := range delays {
		if d <= 0 {
			return nil, fmt.Errorf("retry delays must be positive")
		}
		out = append(out, time.Duration(d))
	}
	return out, nil
}

// build turns the config into a prepared sender.Endpoint, expanding placeholders.
func (c EndpointConfig) build(logger *zap.Logger) (*sender.Endpoint, error) {
	repl := caddy.NewReplacer()
	e := &sender.Endpoint{
		Name:            c.Name,
		Events:          c.Events,
		Filter:          c.Filter,
		Transform:       c.Transform,
		ConnectTimeout:  time.Duration(c.ConnectTimeout),
		ResponseTimeout: time.Duration(c.ResponseTimeout),
		AllowPrivate:    c.AllowPrivate,
		Concurrency:     c.Concurrency,
		Header:          http.Header{},
	}
	var err error
	if e.URL, err = repl.ReplaceOrErr(c.URL, true, true); err != nil {
		return nil, fmt.Errorf("endpoint %s: url: %v", c.Name, err)
	}
	for k, vs := range c.Headers {
		for _, v := range vs {
			x, err := repl.ReplaceOrErr(v, true, true)
			if err != nil {
				return nil, fmt.Errorf("endpoint %s: header %s: %v", c.Name, k, err)
			}
			e.Header.Add(k, x)
		}
	}
	what := "endpoint " + c.Name
	if c.BasicAuth != nil {
		user, err := repl.ReplaceOrErr(c.BasicAuth.Username, true, true)
		if err != nil {
			return nil, fmt.Errorf("%s: basic_auth user: %v", what, err)
		}
		pass, err := expandSecret(repl, what+" basic_auth", c.BasicAuth.Password, logger)
		if err != nil {
			return nil, err
		}
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		e.Header.Set("Authorization", r.Header.Get("Authorization"))
	}
	if c.Sign != nil { // its scheme and secrets were judged by validate
		for _, s := range c.Sign.Secrets {
			v, err := expandSecret(repl, what+" sign", s, logger)
			if err != nil {
				return nil, err
			}
			e.SigningSecrets = append(e.SigningSecrets, v)
		}
	}
	e.Retry, _ = retrySchedule(c.RetryOff, c.Retry) // judged by validate, as the rate and breaker
	e.RatePerSecond, _ = sender.ParseRate(c.RateLimit)
	e.Breaker, _ = c.Breaker.Policy()
	return e, nil // the registry prepares it
}

// validate judges the endpoint's config as written; its name (reserved starts), URL, event
// patterns, concurrency and CEL filter are judged by the registry when it is added.
func (c EndpointConfig) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("endpoint: a name is required")
	case c.URL == "":
		return fmt.Errorf("endpoint %s: url is required", c.Name)
	case c.ConnectTimeout < 0 || c.ResponseTimeout < 0:
		return fmt.Errorf("endpoint %s: timeouts must be positive", c.Name)
	case c.BasicAuth != nil && c.BasicAuth.Username == "":
		return fmt.Errorf("endpoint %s: basic_auth needs a user name", c.Name)
	}
	if c.Sign != nil {
		if c.Sign.Scheme != "" && c.Sign.Scheme != "standard" {
			return fmt.Errorf("endpoint %s: sign %q: only 'standard' (Standard Webhooks) signs deliveries", c.Name, c.Sign.Scheme)
		}
		if len(c.Sign.Secrets) == 0 {
			return fmt.Errorf("endpoint %s: sign standard needs at least one whsec_ secret", c.Name)
		}
	}
	if _, err := retrySchedule(c.RetryOff, c.Retry); err != nil {
		return fmt.Errorf("endpoint %s: %v", c.Name, err)
	}
	if c.RateLimit != "" {
		if _, err := sender.ParseRate(c.RateLimit); err != nil {
			return fmt.Errorf("endpoint %s: %v", c.Name, err)
		}
	}
	if _, err := c.Breaker.Policy(); err != nil {
		return fmt.Errorf("endpoint %s: %v", c.Name, err)
	}
	return nil
}
