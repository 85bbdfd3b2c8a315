// Package hookgate is the import path xcaddy plugs in
// (`xcaddy build --with github.com/hookgate/hookgate`): importing it registers every
// Hookgate Caddy module, Caddyfile directive and the `caddy webhook` command. The Caddy
// glue lives in caddymodule/ and cmd/webhookcmd; the gateway in gateway/ and the cores.
package hookgate

import (
	// Register the Hookgate modules and Caddyfile directives.
	_ "github.com/hookgate/hookgate/caddymodule"
	// Register the `caddy webhook` command.
	_ "github.com/hookgate/hookgate/cmd/webhookcmd"
)
