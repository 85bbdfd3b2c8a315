// Package webhookcmd is the `caddy webhook` command: list the embedded schemas, validate a
// payload as the gateway would, sign and send test webhooks. Importing it registers the
// command with Caddy's CLI.
package webhookcmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/schemas"
	"github.com/hookgate/hookgate/signature"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhook",
		Usage: "schemas | validate | transform | sign | send | quarantine",
		Short: "Hookgate webhook tools: list schemas, validate, try transforms, sign and send test webhooks",
		Long: `Tools for Hookgate, the webhook gateway:

  caddy webhook schemas                                   lists the embedded JSON Schemas
  caddy webhook validate --schema <name-or-file> <file>   validates a payload as the gateway would
  caddy webhook transform --expr '<CEL>' [--preset <p>] <file>  runs a transform on a payload
  caddy webhook sign --scheme <scheme> --secret <s> <file>  prints the headers a sender would send
  caddy webhook send --url <url> [--preset <p>] [--secret <s>] <file>  sends a test webhook
  caddy webhook quarantine list|release|drop --route <r> [--id <id> | --pointer <p>]  a route's quarantine

Use "-" as the file to read standard input.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(schemasCommand(), validateCommand(), transformCommand(), signCommand(), sendCommand(), quarantineCommand())
		},
	})
}

func readPayload(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the payload: %w", err)
	}
	return b, nil
}

func schemasCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schemas",
		Short: "Lists the embedded JSON Schemas (usable as `schema <name>`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			presets := map[string][]string{}
			for _, p := range receiver.PresetNames() {
				if s := receiver.Presets[p].Schema; s != "" {
					presets[s] = append(presets[s], p)
				}
			}
			for _, n := range schemas.Names() {
				line := fmt.Sprintf("%-26s %s", n, schemas.Title(n))
				if ps := presets[n]; len(ps) > 0 {
					line += "  (preset " + strings.Join(ps, ", ") + ")"
				}
				fmt.Fprintln(out, strings.TrimRight(line, " "))
			}
			return nil
		},
	}
}

func validateCommand() *cobra.Command {
	var schema string
	c := &cobra.Command{
		Use:   "validate --schema <name-or-file> <file>",
		Short: "Validates a payload as the gateway would; prints the same problem document on failure",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readPayload(args[0])
			if err != nil {
				return err
			}
			p, err := receiver.Validate(schema, body)
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "valid: %s matches %s\n", args[0], schemaLabel(schema))
				return nil
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			_ = enc.Encode(p)
			cmd.SilenceUsage = true
			return fmt.Errorf("invalid: the gateway would answer %d", p.Status)
		},
	}
	c.Flags().StringVar(&schema, "schema", "", "embedded schema name or JSON Schema file (empty: JSON syntax only)")
	return c
}

func schemaLabel(s string) string {
	if s == "" {
		return "JSON syntax (no schema)"
	}
	return "schema " + s
}

func signCommand() *cobra.Command {
	var scheme, header, algorithm, id string
	var secrets []string
	c := &cobra.Command{
		Use:   "sign --scheme <scheme> --secret <secret> <file>",
		Short: "Prints the headers a sender using the scheme would send with the payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readPayload(args[0])
			if err != nil {
				return err
			}
			h, err := sign(scheme, secrets, header, algorithm, id, body)
			if err != nil {
				return err
			}
			printHeaders(cmd.OutOrStdout(), h)
			return nil
		},
	}
	c.Flags().StringVar(&scheme, "scheme", "", "standard, github, stripe, shopify, slack or generic (required)")
	c.Flags().StringArrayVar(&secrets, "secret", nil, "signing secret; repeat for rotation (required)")
	c.Flags().StringVar(&header, "header", "", "signature header (generic scheme)")
	c.Flags().StringVar(&algorithm, "algorithm", "", "sha256 or sha512 (generic scheme)")
	c.Flags().StringVar(&id, "id", "", "message id (standard scheme; default: a fresh one)")
	return c
}

func sign(scheme string, secrets []string, header, algorithm, id string, body []byte) (http.Header, error) {
	if scheme == "" || len(secrets) == 0 {
		return nil, errors.New("--scheme and --secret are required")
	}
	if scheme == signature.Generic && header == "" {
		return nil, errors.New("--scheme generic needs --header <Name>: the header the signature travels in")
	}
	if id == "" {
		id = fmt.Sprintf("msg_%d", time.Now().UnixNano())
	}
	return signature.Sign(signature.Config{Scheme: scheme, Secrets: secrets, Header: header, Algorithm: algorithm},
		signature.Message{ID: id, Time: time.Now(), Body: body})
}

// presetHelp lists how each preset's sender sends its credential, from the preset table.
func presetHelp() string {
	var b strings.Builder
	for _, name := range receiver.PresetNames() {
		fmt.Fprintf(&b, "  --preset %-15s %s\n", name, receiver.Presets[name].SendsWith())
	}
	return b.String()
}

func printHeaders(w io.Writer, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
}

func sendCommand() *cobra.Command {
	var target, preset, secret, scheme, header, basicUser, algorithm string
	var bearer, verbose bool
	var extra []string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "send --url <url> [--preset <preset>] [--secret <secret>] <file>",
		Short: "Sends a test webhook as the sender would (its credential or signature), prints the answer",
		Long: `Sends the payload file with POST and Content-Type: application/json, with the
credential the sender puts on it:

` + presetHelp() + `  --scheme <scheme>        signed with any HMAC scheme (--header for generic)
  --header <Name>          <Name>: <secret> (overrides the preset's header)
  --bearer                 Authorization: Bearer <secret>
  --basic <user>           Authorization: Basic <user>:<secret>

A preset whose sender names each delivery in a header (webhook-id, X-GitHub-Delivery,
X-Shopify-Webhook-Id) gets a fresh one unless -H gives it.

It exits 0 on a 2xx answer and 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readPayload(args[0])
			if err != nil {
				return err
			}
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--url %q: an absolute http or https URL is required", target)
			}
			var p receiver.Preset
			if preset != "" {
				if p, err = receiver.LookupPreset(preset); err != nil {
					return err
				}
			}
			added := http.Header{}
			for _, kv := range extra {
				k, v, ok := strings.Cut(kv, ":")
				if !ok {
					return fmt.Errorf("-H %q: want \"Name: value\"", kv)
				}
				added.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			// The sender's delivery id, fresh unless given: the route's event id reads it.
			id := added.Get(p.IDHeader)
			if p.IDHeader != "" && id == "" {
				id = fmt.Sprintf("cli-%d", time.Now().UnixNano())
				added.Set(p.IDHeader, id)
			}
			h := http.Header{}
			switch {
			case scheme != "":
				if h, err = sign(scheme, []string{secret}, header, algorithm, "", body); err != nil {
					return err
				}
			case secret == "":
			case basicUser != "":
				r := http.Request{Header: h}
				r.SetBasicAuth(basicUser, secret)
			case bearer:
				h.Set("Authorization", "Bearer "+secret)
			case header != "":
				h.Set(header, secret)
			case p.Scheme != "":
				if h, err = sign(p.Scheme, []string{secret}, "", "", id, body); err != nil {
					return err
				}
			case p.SecretHeader != "":
				h.Set(p.SecretHeader, secret)
			case p.SecretQuery != "":
				q := u.Query()
				q.Set(p.SecretQuery, secret)
				u.RawQuery = q.Encode()
				target = u.String()
			default:
				return errors.New("--secret needs a way to send it: --preset <preset>, --scheme, --header, --bearer or --basic")
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header = h
			for k, vs := range added {
				if k == http.CanonicalHeaderKey(p.IDHeader) {
					req.Header[k] = vs // the one the signature covers, never a second value
					continue
				}
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "caddy-webhook-send")
			client := &http.Client{Timeout: timeout}
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("sending: %w", err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s %s in %v\n", resp.Proto, resp.Status, time.Since(start).Round(time.Microsecond))
			if verbose {
				printHeaders(out, resp.Header)
			} else {
				for _, k := range []string{"Content-Type", "Webhook-Duplicate", "Retry-After"} {
					if v := resp.Header.Get(k); v != "" {
						fmt.Fprintf(out, "%s: %s\n", k, v)
					}
				}
			}
			fmt.Fprintf(out, "\n%s\n", bytes.TrimSpace(answer))
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				cmd.SilenceUsage = true
				return fmt.Errorf("the gateway answered %d", resp.StatusCode)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&target, "url", "", "the route to send to (required)")
	f.StringVar(&preset, "preset", "", "the sender: "+strings.Join(receiver.PresetNames(), ", "))
	f.StringVar(&secret, "secret", "", "the credential or signing secret")
	f.StringVar(&scheme, "scheme", "", "sign with this HMAC scheme")
	f.StringVar(&header, "header", "", "send the secret in this header (or: the generic scheme's signature header)")
	f.StringVar(&algorithm, "algorithm", "", "sha256 or sha512 (generic scheme)")
	f.BoolVar(&bearer, "bearer", false, "send Authorization: Bearer <secret>")
	f.StringVar(&basicUser, "basic", "", "send HTTP Basic with this user and the secret as password")
	f.BoolVarP(&verbose, "verbose", "v", false, "print every answer header")
	f.StringArrayVarP(&extra, "add-header", "H", nil, `add a header, "Name: value" (repeatable), e.g. -H "X-GitHub-Delivery: 1"`)
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	_ = c.MarkFlagRequired("url")
	return c
}
