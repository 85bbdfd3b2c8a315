package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

func TestQueryLogFilter(t *testing.T) {
	var f QueryLogFilter
	if err := f.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`webhook_query key token`)); err != nil || len(f.Params) != 2 {
		t.Fatalf("unmarshal: %v %v", f.Params, err)
	}
	if err := new(QueryLogFilter).UnmarshalCaddyfile(caddyfile.NewTestDispenser(`webhook_query`)); err == nil {
		t.Fatal("webhook_query without parameters accepted")
	}
	for in, want := range map[string]string{
		"/in":                           "/in",
		"/in?key=s3cret&x=1":            "/in?key=REDACTED&x=1",
		"/in?KEY=s3cret":                "/in?KEY=REDACTED",
		"/in?%6Bey=s3cret&Token=t0k":    "/in?Token=REDACTED&key=REDACTED",
		"/in?x=%zz&key=s3cret":          "/in?(unparsable query)",
		"/in?a=1;key=s3cret":            "/in?(unparsable query)",
		"https://h/in?key=s3cret#frag":  "https://h/in?key=REDACTED",
		"/in?keys=kept&monkey=kept&k=1": "/in?k=1&keys=kept&monkey=kept",
	} {
		if got := f.Filter(zap.String("uri", in)).String; got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
