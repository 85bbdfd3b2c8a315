package webhookcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/transform"
	"github.com/spf13/cobra"
)

// transformCommand is `caddy webhook transform`: try a transform on a payload before
// deploying it, as the gateway would run it.
func transformCommand() *cobra.Command {
	var expr, exprFile, preset, route, eventID, typ, endpoint string
	var headers []string
	var outbound, indent bool
	c := &cobra.Command{
		Use:   "transform --expr '<CEL>' [--preset <p>] <file>",
		Short: "Runs a transform on a payload as the gateway would; prints the new body (or the error)",
		Long: `Runs a transform on a payload as the gateway would, and prints the new body (the headers
with_headers sets come first, one per line, then a blank line). With --preset the payload is
first validated against the preset's schema, as the route would, and the route is named after
the preset. --outbound compiles it as an endpoint's or subscription's transform (body, type,
event_id, endpoint) instead of a route's (body, headers, route, event_id).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			if (expr == "") == (exprFile == "") {
				return errors.New("give the transform with --expr or --expr-file (one of them)")
			}
			if exprFile != "" {
				b, err := os.ReadFile(exprFile)
				if err != nil {
					return fmt.Errorf("reading the transform: %w", err)
				}
				expr = string(b)
			}
			side := transform.Inbound
			if outbound {
				side = transform.Outbound
			}
			tr, err := transform.Compile(side, expr)
			if err != nil {
				return err
			}
			body, err := readPayload(args[0])
			if err != nil {
				return err
			}
			if preset != "" {
				p, err := receiver.LookupPreset(preset)
				if err != nil {
					return err
				}
				if pr, err := receiver.Validate(p.Schema, body); err != nil {
					return err
				} else if pr != nil {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					_ = enc.Encode(pr)
					return fmt.Errorf("invalid: the route would answer %d before the transform runs", pr.Status)
				}
				if route == "" {
					route = preset
				}
			} else if pr, err := receiver.Validate("", body); err != nil {
				return err
			} else if pr != nil {
				return fmt.Errorf("invalid: %s", pr.Detail)
			}
			in := &transform.Input{Body: body, Header: http.Header{}, Route: route, EventID: eventID, Type: typ, Endpoint: endpoint}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return fmt.Errorf("--header %q: use Name: value", h)
				}
				in.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			out, err := tr.Run(context.Background(), in)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(out.Header) > 0 {
				names := make([]string, 0, len(out.Header))
				for k := range out.Header {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, k := range names {
					fmt.Fprintf(w, "%s: %s\n", k, out.Header.Get(k))
				}
				fmt.Fprintln(w)
			}
			if indent {
				var v any
				_ = json.Unmarshal(out.Body, &v)
				b, _ := json.MarshalIndent(v, "", "  ")
				out.Body = b
			}
			fmt.Fprintf(w, "%s\n", out.Body)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&expr, "expr", "", "the CEL transform")
	f.StringVar(&exprFile, "expr-file", "", "a file holding the CEL transform")
	f.StringVar(&preset, "preset", "", "validate the payload with this preset's schema first; the route's name defaults to it")
	f.StringVar(&route, "route", "", "the `route` the transform sees")
	f.StringVar(&eventID, "event-id", "", "the `event_id` the transform sees")
	f.StringArrayVar(&headers, "header", nil, "a request header the transform sees, 'Name: value' (repeat)")
	f.BoolVar(&outbound, "outbound", false, "an endpoint's or subscription's transform (sees type, endpoint; no headers)")
	f.StringVar(&typ, "type", "", "the event `type` (with --outbound)")
	f.StringVar(&endpoint, "endpoint", "", "the `endpoint` name (with --outbound)")
	f.BoolVar(&indent, "indent", false, "indent the printed body")
	return c
}
