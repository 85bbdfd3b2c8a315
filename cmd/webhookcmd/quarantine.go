package webhookcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// quarantineCommand is `caddy webhook quarantine list|release|drop`: the admin API's
// quarantine of a route, from the command line.
func quarantineCommand() *cobra.Command {
	var address, route, id, pointer, state string
	var force, all bool
	c := &cobra.Command{
		Use:   "quarantine list|release|drop --route <route> [--id <id> | --pointer <JSON pointer>]",
		Short: "Lists, releases or drops a route's quarantined requests (on_invalid quarantine), through the admin API",
		Long: `Lists, releases or drops the requests a route's schema refused and its quarantine holds.

  caddy webhook quarantine list --route ploomes [--state released]
  caddy webhook quarantine release --route ploomes [--id q_… | --pointer /New/Id] [--force]
  caddy webhook quarantine drop --route ploomes (--id q_… | --pointer /New/Id | --all)

A release checks each request again against the route's config of now and hands it on
(dedupe and the stale-event guard apply); --force skips the schema ("release anyway").
It prints the admin API's JSON answer and fails when the API refuses.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"list", "release", "drop"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if route == "" {
				return fmt.Errorf("--route is required")
			}
			q := url.Values{}
			set := func(k, v string) {
				if v != "" {
					q.Set(k, v)
				}
			}
			set("id", id)
			set("pointer", pointer)
			method, path := http.MethodPost, "/webhooks/inbound/"+url.PathEscape(route)+"/quarantine"
			switch args[0] {
			case "list":
				method = http.MethodGet
				set("state", state)
			case "release":
				path += "/release"
				if force {
					q.Set("force", "true")
				}
			case "drop":
				path += "/drop"
				if all {
					q.Set("all", "true")
				}
			default:
				return fmt.Errorf("%q: list, release or drop", args[0])
			}
			base := address
			if !strings.Contains(base, "://") {
				base = "http://" + base
			}
			u := strings.TrimRight(base, "/") + path
			if len(q) > 0 {
				u += "?" + q.Encode()
			}
			req, err := http.NewRequestWithContext(cmd.Context(), method, u, nil)
			if err != nil {
				return err
			}
			client := &http.Client{Timeout: 10 * time.Minute} // a release of many requests takes a while
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("reaching the admin API at %s: %w", address, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("reading the admin API's answer: %w", err)
			}
			var v any
			if json.Unmarshal(b, &v) == nil {
				b, _ = json.MarshalIndent(v, "", "  ")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			if resp.StatusCode >= 300 {
				return fmt.Errorf("the admin API answered %s", resp.Status)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&address, "address", "localhost:2019", "the admin endpoint's address")
	f.StringVar(&route, "route", "", "the webhook_receive route's name")
	f.StringVar(&id, "id", "", "one quarantined request")
	f.StringVar(&pointer, "pointer", "", "the requests with a violation at (or below) this JSON pointer; * matches any index")
	f.StringVar(&state, "state", "", "list: held (default), released or dropped")
	f.BoolVar(&force, "force", false, "release: skip the schema (release anyway)")
	f.BoolVar(&all, "all", false, "drop: every held request of the route")
	return c
}
