package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("webhook_receive", parseReceive)
	// After every request-rewriting and authentication directive, before encode, the
	// handle/route blocks and every terminal handler (respond, reverse_proxy, …), so it runs
	// before reverse_proxy in the same block and can guard a whole site from the top.
	httpcaddyfile.RegisterDirectiveOrder("webhook_receive", httpcaddyfile.After, "request_header")
	httpcaddyfile.RegisterGlobalOption("webhooks", parseWebhooksOption)
	httpcaddyfile.RegisterHandlerDirective("webhook_publish", parsePublish)
	// Terminal handlers, like respond.
	httpcaddyfile.RegisterDirectiveOrder("webhook_publish", httpcaddyfile.Before, "respond")
}

func parsePublish(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Publish)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_publish [<matcher>] {
//		max_body <size>
//		allowed_origins <origin>...
//	}
func (p *Publish) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_body":
			if err := into(&p.MaxBody)(sizeArg(d)); err != nil {
				return err
			}
		case "allowed_origins":
			origins, err := originsArg(d)
			if err != nil {
				return err
			}
			p.AllowedOrigins = append(p.AllowedOrigins, origins...)
		default:
			return d.Errf("unrecognized webhook_publish option %q (max_body, allowed_origins)", d.Val())
		}
	}
	return nil
}

// parseRetry reads `retry <duration> [<duration>…] | off`.
func parseRetry(d *caddyfile.Dispenser) (off bool, delays []caddy.Duration, err error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return false, nil, d.ArgErr()
	}
	if len(args) == 1 && args[0] == "off" {
		return true, nil, nil
	}
	for _, a := range args {
		dur, err := caddy.ParseDuration(a)
		if err != nil || dur <= 0 {
			return false, nil, d.Errf("retry: %q is not a positive duration", a)
		}
		delays = append(delays, caddy.Duration(dur))
	}
	return false, delays, nil
}

func sizeArg(d *caddyfile.Dispenser) (int64, error) {
	opt := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.ArgErr()
	}
	size, err := humanize.ParseBytes(v)
	if err != nil || size == 0 {
		return 0, d.Errf("%s: %q is not a size (e.g. 5MB)", opt, v)
	}
	return int64(size), nil
}

// parseFeed reads `feed <name> { schema <name-or-file>; page_size <n>; retention <duration> }`.
func parseFeed(d *caddyfile.Dispenser) (FeedConfig, error) {
	var f FeedConfig
	if !d.Args(&f.Name) || d.NextArg() {
		return f, d.Errf("feed takes one argument: its name")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := simpleOption(d, map[string]*string{"schema": &f.Schema}, map[string]*caddy.Duration{"retention": &f.Retention}); ok || err != nil {
			if err != nil {
				return f, err
			}
			continue
		}
		switch d.Val() {
		case "page_size":
			if err := into(&f.PageSize)(positiveArg(d)); err != nil {
				return f, err
			}
		default:
			return f, d.Errf("unrecognized feed option %q (known: schema, page_size, retention)", d.Val())
		}
	}
	return f, nil
}

func parseEndpoint(d *caddyfile.Dispenser) (EndpointConfig, error) {
	var e EndpointConfig
	if !d.Args(&e.Name) || d.NextArg() {
		return e, d.Errf("endpoint <name> { url <url> … }")
	}
	words := map[string]*string{"url": &e.URL, "rate_limit": &e.RateLimit, "transform": &e.Transform, "filter": &e.Filter}
	durations := map[string]*caddy.Duration{"connect_timeout": &e.ConnectTimeout, "response_timeout": &e.ResponseTimeout}
	for n := d.Nesting(); d.NextBlock(n); {
		if ok, err := simpleOption(d, words, durations); ok || err != nil {
			if err != nil {
				return e, err
			}
			continue
		}
		opt := d.Val()
		switch opt {
		case "events":
			e.Events = append(e.Events, d.RemainingArgs()...)
			if len(e.Events) == 0 {
				return e, d.ArgErr()
			}
		case "header":
			var k, v string
			if !d.Args(&k, &v) || d.NextArg() {
				return e, d.Errf("header <Header-Name> <value>")
			}
			if e.Headers == nil {
				e.Headers = http.Header{}
			}
			e.Headers.Add(k, v)
		case "basic_auth":
			var b BasicAuthConfig
			if !d.Args(&b.Username, &b.Password) || d.NextArg() {
				return e, d.Errf("basic_auth <user> <password>")
			}
			e.BasicAuth = &b
		case "sign":
			var scheme string
			if !d.Args(&scheme) {
				return e, d.ArgErr()
			}
			e.Sign = &SignConfig{Scheme: scheme, Secrets: d.RemainingArgs()}
		case "retry":
			var err error
			if e.RetryOff, e.Retry, err = parseRetry(d); err != nil {
				return e, err
			}
		case "allow_private":
			if d.NextArg() {
				return e, d.ArgErr()
			}
			e.AllowPrivate = true
		case "concurrency":
			if err := into(&e.Concurrency)(positiveArg(d)); err != nil {
				return e, err
			}
		case "breaker":
			var err error
			if e.Breaker, err = breakerArgs(d); err != nil {
				return e, err
			}
		default:
			return e, d.Errf("unrecognized endpoint option %q", opt)
		}
	}
	return e, nil
}

func parseReceive(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	r := new(Receive)
	err := r.UnmarshalCaddyfile(h.Dispenser)
	return r, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_receive [<matcher>] [<preset>] {
//		validation_key <key>
//		auth header <Header-Name> <value>
//		auth bearer <token>
//		auth basic <user> <password>
//		auth query <param> <value>
//		auth hmac <scheme> <secret> [<secret>…] {
//			header <Header-Name>
//			algorithm sha256|sha512
//			tolerance <duration>
//		}
//		auth none
//		schema <name-or-file>
//		event_id <source> [<source>…]
//		dedupe <window>|off
//		dedupe_scope <name>
//		name <route-name>
//		claim_timeout <duration>
//		max_body <size>
//		mode sync|async
//		deliver_to <url> {
//			retry <duration> [<duration>…] | off
//			response_timeout <duration>
//		}
//		on_store_error reject|accept
//		reject_case_duplicates [on|off]
//		log_accepted sampled|all
//		transform <CEL expression>
//		on_invalid reject|quarantine [{ retention <duration>  max_bytes <size> }]
//	}
//
// Placeholders in secrets ({env.NAME}, {file./path}) are kept as written and expanded at
// provision time.
func (h *Receive) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		h.Preset = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	words := map[string]*string{"schema": &h.Schema, "name": &h.Name, "dedupe_scope": &h.DedupeScope, "mode": &h.Mode,
		"on_store_error": &h.OnStoreError, "log_accepted": &h.LogAccepted, "transform": &h.Transform}
	durations := map[string]*caddy.Duration{"claim_timeout": &h.ClaimTimeout, "order_window": &h.OrderWindow,
		"order_max_ahead": &h.OrderMaxAhead}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := parseCredential(d, &h.Auth); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		if ok, err := simpleOption(d, words, durations); ok || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch d.Val() {
		case "event_id":
			h.EventID = d.RemainingArgs()
			if len(h.EventID) == 0 {
				return d.ArgErr()
			}
		case "dedupe":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			if v == "off" {
				h.DedupeOff = true
				continue
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("dedupe: %q is not a positive duration or 'off'", v)
			}
			h.Dedupe = caddy.Duration(dur)
		case "max_body":
			if err := into(&h.MaxBody)(sizeArg(d)); err != nil {
				return err
			}
		case "deliver_to":
			if !d.Args(&h.DeliverTo) || d.NextArg() {
				return d.ArgErr()
			}
			for n2 := d.Nesting(); d.NextBlock(n2); {
				switch d.Val() {
				case "retry":
					var err error
					if h.DeliverRetryOff, h.DeliverRetry, err = parseRetry(d); err != nil {
						return err
					}
				case "response_timeout":
					if err := into(&h.DeliverTimeout)(durationArg(d)); err != nil {
						return err
					}
				case "breaker":
					var err error
					if h.DeliverBreaker, err = breakerArgs(d); err != nil {
						return err
					}
				default:
					return d.Errf("unrecognized deliver_to option %q (retry, response_timeout, breaker)", d.Val())
				}
			}
		case "on_invalid":
			var err error
			if h.OnInvalid, h.Quarantine, err = gateway.ParseOnInvalid(blockWords(d)); err != nil {
				return d.Err(err.Error())
			}
		case "reject_case_duplicates":
			on := true
			if d.NextArg() {
				switch d.Val() {
				case "on":
				case "off":
					on = false
				default:
					return d.Errf("reject_case_duplicates: on or off, not %q", d.Val())
				}
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			h.RejectCaseDuplicates = &on
		case "order_by":
			var err error
			if h.OrderBy, h.OrderKey, err = receiver.ParseOrderBy(d.RemainingArgs(), h.Preset != ""); err != nil {
				return d.Err(err.Error())
			}
		case "log_requests":
			n, err := intArg(d)
			if err != nil {
				return err
			}
			if n < 0 { // in JSON a negative number is off; here 0 is
				return d.Errf("log_requests: %d: a number from 0 (off) to %d", n, gateway.MaxLogRequests)
			}
			h.LogRequests = n
			if n == 0 {
				h.LogRequests = -1
			}
		case "log_body":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("log_body: %q is not a size (0 keeps none)", v)
			}
			h.LogBody = int64(size)
			if size == 0 {
				h.LogBody = -1
			}
		default:
			return d.Errf("unrecognized webhook_receive option %q", d.Val())
		}
	}
	return nil
}

// simpleOption reads the current option if it is one of words (one argument) or durations
// (one positive duration), and reports whether it was.
func simpleOption(d *caddyfile.Dispenser, words map[string]*string, durations map[string]*caddy.Duration) (bool, error) {
	if p, ok := words[d.Val()]; ok {
		if !d.Args(p) || d.NextArg() {
			return true, d.ArgErr()
		}
		return true, nil
	}
	if p, ok := durations[d.Val()]; ok {
		dur, err := durationArg(d)
		*p = dur
		return true, err
	}
	return false, nil
}

// blockWords returns an option's arguments and then its block's words.
func blockWords(d *caddyfile.Dispenser) []string {
	words := d.RemainingArgs()
	for n := d.Nesting(); d.NextBlock(n); {
		words = append(append(words, d.Val()), d.RemainingArgs()...)
	}
	return words
}

// breakerArgs reads `breaker off` or a `breaker { <option> <value> … }` block.
func breakerArgs(d *caddyfile.Dispenser) (*sender.BreakerConfig, error) {
	b, err := sender.ParseBreakerArgs(blockWords(d))
	if err != nil {
		return nil, d.Err(err.Error())
	}
	return b, nil
}

// into returns a setter of *dst for an argument reader's result: the value is kept when
// there is no error.
func into[T any](dst *T) func(T, error) error {
	return func(v T, err error) error {
		if err == nil {
			*dst = v
		}
		return err
	}
}

// intArg reads one whole-number argument (its range is judged by Validate).
func intArg(d *caddyfile.Dispenser) (int, error) {
	opt := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, d.Errf("%s: %q is not a number", opt, v)
	}
	return n, nil
}

// positiveArg reads one whole number of at least 1: in JSON 0 means the default, so a
// Caddyfile's explicit 0 is refused rather than silently taken as the default.
func positiveArg(d *caddyfile.Dispenser) (int, error) {
	opt := d.Val()
	n, err := intArg(d)
	if err == nil && n < 1 {
		err = d.Errf("%s: %d: a whole number of at least 1 (leave the option out for the default)", opt, n)
	}
	return n, err
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	opt := d.Val()
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", opt, v)
	}
	return caddy.Duration(dur), nil
}

// parseCredential reads a `validation_key <key>` or `auth …` line into auth, and reports
// whether the current token was one (webhook_receive and webhook_feed share them).
func parseCredential(d *caddyfile.Dispenser, auth *[]AuthConfig) (bool, error) {
	switch d.Val() {
	case "validation_key":
		var key string
		if !d.Args(&key) || d.NextArg() {
			return true, d.ArgErr()
		}
		*auth = append(*auth, AuthConfig{Method: "validation_key", Secret: key})
	case "auth":
		a, err := parseAuthLine(d)
		if err != nil {
			return true, err
		}
		*auth = append(*auth, a)
	default:
		return false, nil
	}
	return true, nil
}

func parseAuthLine(d *caddyfile.Dispenser) (AuthConfig, error) {
	if !d.NextArg() {
		return AuthConfig{}, d.ArgErr()
	}
	a := AuthConfig{Method: d.Val()}
	switch a.Method {
	case "header", "query":
		if !d.Args(&a.Name, &a.Secret) || d.NextArg() {
			return a, d.Errf("auth %s <name> <value>", a.Method)
		}
	case "bearer":
		if !d.Args(&a.Secret) || d.NextArg() {
			return a, d.Errf("auth bearer <token>")
		}
	case "basic":
		if !d.Args(&a.User, &a.Secret) || d.NextArg() {
			return a, d.Errf("auth basic <user> <password>")
		}
	case "none":
		if d.NextArg() {
			return a, d.ArgErr()
		}
	case "hmac":
		if !d.Args(&a.Scheme) {
			return a, d.Errf("auth hmac <scheme> <secret> [<secret>…]")
		}
		a.Secrets = d.RemainingArgs()
		if len(a.Secrets) == 0 {
			return a, d.Errf("auth hmac %s: at least one secret", a.Scheme)
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			switch d.Val() {
			case "header":
				if !d.Args(&a.Header) || d.NextArg() {
					return a, d.ArgErr()
				}
			case "algorithm":
				if !d.Args(&a.Algorithm) || d.NextArg() {
					return a, d.ArgErr()
				}
			case "tolerance":
				if err := into(&a.Tolerance)(durationArg(d)); err != nil {
					return a, err
				}
			default:
				return a, d.Errf("unrecognized auth hmac option %q", d.Val())
			}
		}
	default:
		return a, d.Errf("auth %q: header, bearer, basic, query, hmac or none", a.Method)
	}
	return a, nil
}

// parseWebhooksOption parses the `webhooks` global option into the webhooks app:
//
//	webhooks {
//		store embedded [<file>]
//		store redis <url> {
//			key_prefix <prefix>
//			cluster
//		}
//		retention <duration>
//		endpoint <name> {
//			url <url>
//			events <pattern> [<pattern>…]
//			filter <CEL expression>
//			transform <CEL expression>
//			header <Header-Name> <value>
//			basic_auth <user> <password>
//			sign standard <whsec_secret> [<whsec_secret>…]
//			connect_timeout <duration>
//			response_timeout <duration>
//			retry <duration> [<duration>…] | off
//			rate_limit <n>/<unit>
//			allow_private
//			concurrency <n>
//		}
//	}
func parseWebhooksOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		if prev, ok := existing.(httpcaddyfile.App); ok {
			if err := json.Unmarshal(prev.Value, app); err != nil {
				return nil, err
			}
		}
	}
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "store":
			if app.Store != nil {
				return nil, d.Err("store is already set")
			}
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			switch d.Val() {
			case "embedded":
				e := &EmbeddedStoreConfig{}
				if d.NextArg() {
					e.Path = d.Val()
				}
				if d.NextArg() {
					return nil, d.ArgErr()
				}
				app.Store = &StoreConfig{Embedded: e}
			case "redis":
				r := &RedisStoreConfig{}
				if !d.Args(&r.URL) || d.NextArg() {
					return nil, d.Errf("store redis <url>")
				}
				for n2 := d.Nesting(); d.NextBlock(n2); {
					switch d.Val() {
					case "key_prefix":
						if !d.Args(&r.KeyPrefix) || d.NextArg() {
							return nil, d.ArgErr()
						}
					case "cluster":
						if d.NextArg() {
							return nil, d.ArgErr()
						}
						r.Cluster = true
					case "replicas_ack", "replicas_timeout":
						if err := r.SetOption(d.Val(), d.RemainingArgs()); err != nil {
							return nil, d.Err(err.Error())
						}
					default:
						return nil, d.Errf("unrecognized store redis option %q", d.Val())
					}
				}
				app.Store = &StoreConfig{Redis: r}
			default:
				return nil, d.Errf("store %q: embedded or redis", d.Val())
			}
		case "retention":
			if err := into(&app.Retention)(durationArg(d)); err != nil {
				return nil, err
			}
		case "endpoint":
			e, err := parseEndpoint(d)
			if err != nil {
				return nil, err
			}
			app.Endpoints = append(app.Endpoints, e)
		case "subscriptions":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			sc := &SubscriptionsConfig{}
			for n2 := d.Nesting(); d.NextBlock(n2); {
				switch d.Val() {
				case "allow_private":
					if d.NextArg() {
						return nil, d.ArgErr()
					}
					sc.AllowPrivate = true
				case "grace":
					if err := into(&sc.Grace)(durationArg(d)); err != nil {
						return nil, err
					}
				case "max_subscriptions":
					if err := into(&sc.MaxSubscriptions)(positiveArg(d)); err != nil {
						return nil, err
					}
				default:
					return nil, d.Errf("unrecognized subscriptions option %q (allow_private, grace, max_subscriptions)", d.Val())
				}
			}
			app.Subscriptions = sc
		case "request_log_size":
			if err := into(&app.RequestLogSize)(sizeArg(d)); err != nil {
				return nil, err
			}
		case "feed":
			f, err := parseFeed(d)
			if err != nil {
				return nil, err
			}
			app.Feeds = append(app.Feeds, f)
		default:
			return nil, d.Errf("unrecognized webhooks option %q", d.Val())
		}
	}
	return httpcaddyfile.App{Name: "webhooks", Value: caddyconfig.JSON(app, nil)}, nil
}

var (
	_ caddyfile.Unmarshaler = (*Receive)(nil)
	_ caddyfile.Unmarshaler = (*Publish)(nil)
)

// originsArg reads an allowed_origins line: one or more scheme://host[:port] origins.
func originsArg(d *caddyfile.Dispenser) ([]string, error) {
	origins := d.RemainingArgs()
	if len(origins) == 0 {
		return nil, d.ArgErr()
	}
	return origins, nil
}
