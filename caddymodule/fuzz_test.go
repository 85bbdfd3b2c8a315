package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Every directive's and the global option's Caddyfile parsing never panics, whatever the
// tokens; an error names a line.
func FuzzCaddyfile(f *testing.F) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfiletest")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		in, _, _ := strings.Cut(string(b), "----------")
		f.Add(in)
	}
	for _, s := range []string{"webhook_receive ploomes {\n validation_key k\n}", "webhooks {\n endpoint a {\n url http://x\n retry 1s off\n }\n}", "{", "}", "webhook_publish {\n max_body 1GB\n}", "webhook_dashboard x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tokens, err := caddyfile.Tokenize([]byte(in), "Caddyfile")
		if err != nil {
			return // the lexer refused it; nothing reaches our parsers
		}
		parse := func(name string, fn func(d *caddyfile.Dispenser) error) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s panicked on %q: %v", name, in, r)
				}
			}()
			_ = fn(caddyfile.NewDispenser(tokens))
		}
		parse("webhook_receive", func(d *caddyfile.Dispenser) error { return new(Receive).UnmarshalCaddyfile(d) })
		parse("webhook_publish", func(d *caddyfile.Dispenser) error { return new(Publish).UnmarshalCaddyfile(d) })
		parse("webhook_dashboard", func(d *caddyfile.Dispenser) error { return new(Dashboard).UnmarshalCaddyfile(d) })
		parse("webhook_feed", func(d *caddyfile.Dispenser) error { return new(FeedHandler).UnmarshalCaddyfile(d) })
		parse("webhook_subscriptions", func(d *caddyfile.Dispenser) error { return new(SubscriptionsHandler).UnmarshalCaddyfile(d) })
		parse("webhooks", func(d *caddyfile.Dispenser) error { _, err := parseWebhooksOption(d, nil); return err })
	})
}
