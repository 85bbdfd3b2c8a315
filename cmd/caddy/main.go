// Command caddy is Caddy with its standard modules plus Hookgate.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/hookgate/hookgate"
)

func main() {
	caddycmd.Main()
}
