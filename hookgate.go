// Package hookgate is the import path xcaddy plugs in
// (`xcaddy build --with github.com/hookgate/hookgate`): importing it registers every
// Hookgate Caddy module. The code lives in caddymodule/ (the Caddy glue) and the core
// packages it calls.
package hookgate

import (
	// Register the Hookgate modules and Caddyfile directives.
	_ "github.com/hookgate/hookgate/caddymodule"
)
