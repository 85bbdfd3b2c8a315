package caddymodule

import (
	"errors"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"github.com/hookgate/hookgate/internal/credential"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(QueryLogFilter{})
}

// QueryLogFilter is a log field filter for Caddy's access log (`format filter`) that
// redacts credential query parameters in any case and any percent-encoding, as the request
// log does: `request>uri webhook_query key token`. Caddy's own `query` filter matches one
// exact spelling, so `?KEY=<secret>` would pass it. A query that cannot be parsed is
// replaced whole.
type QueryLogFilter struct {
	// Params are the query parameter names to redact (compared without regard to case).
	// Required.
	Params []string `json:"params"`
}

// CaddyModule returns the Caddy module information.
func (QueryLogFilter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.filter.webhook_query",
		New: func() caddy.Module { return new(QueryLogFilter) },
	}
}

// UnmarshalCaddyfile reads `webhook_query <param>...`.
func (f *QueryLogFilter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the filter's name
	f.Params = append(f.Params, d.RemainingArgs()...)
	if len(f.Params) == 0 {
		return d.Err("webhook_query needs the names of the query parameters to redact")
	}
	return nil
}

// Validate implements caddy.Validator.
func (f *QueryLogFilter) Validate() error {
	if len(f.Params) == 0 {
		return errors.New("webhook_query: params is empty: name the query parameters to redact")
	}
	return nil
}

// Filter implements logging.LogFieldFilter: a URI (or URL) string field keeps its path and
// gets its query redacted.
func (f QueryLogFilter) Filter(in zapcore.Field) zapcore.Field {
	before, rawQuery, ok := strings.Cut(in.String, "?")
	if !ok {
		return in
	}
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	q, ok := credential.RedactQuery(rawQuery, f.Params)
	if !ok {
		q = "(unparsable query)"
	}
	in.String = before + "?" + q
	return in
}

var (
	_ logging.LogFieldFilter = (*QueryLogFilter)(nil)
	_ caddyfile.Unmarshaler  = (*QueryLogFilter)(nil)
	_ caddy.Validator        = (*QueryLogFilter)(nil)
)
