// Package credential is the one list of request headers that carry a credential on every
// route, whatever its auth lines: the request log redacts them, the async forwarder never
// queues them, and CEL filters do not see them. Both cores import it (it imports neither).
package credential

import "net/http"

// Headers are the headers treated as credentials on every route, in canonical form. A
// route adds the headers its own auth lines read (auth header <Name>).
var Headers = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Ploomes-Validation-Key"}

var set = func() map[string]bool {
	m := make(map[string]bool, len(Headers))
	for _, h := range Headers {
		m[h] = true
	}
	return m
}()

// IsCredentialHeader reports whether name (any case) is one of Headers.
func IsCredentialHeader(name string) bool {
	if set[name] { // the canonical form, as http.Header keys are: no allocation
		return true
	}
	return set[http.CanonicalHeaderKey(name)]
}

// Redacted replaces a secret wherever Hookgate shows what it received or sends (the
// request log, the admin API, endpoint URLs): a header or query value that is exactly
// this was a credential, and a replay drops it rather than send it.
const Redacted = "REDACTED"
