package integration

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A subscriber's filter is an oracle over what it can read: with `headers` holding the
// publish request's Authorization, 26 subscriptions `headers["authorization"].startsWith(
// "Bearer internal-<c>")` read the publisher's token one character per publish. Credential
// headers are never visible to filters; other headers are.
func TestFiltersNeverSeeCredentialHeaders(t *testing.T) {
	be := startBackend(t)
	c := startCaddy(t, subsConfig(t, "", "subscriptions {\n\t\t\tallow_private\n\t\t}"))
	admin := c.AdminURL() + "/webhooks/subscriptions"
	filters := []string{
		`headers["authorization"].startsWith("Bearer internal-")`,
		`"authorization" in headers`,
		`headers["cookie"].contains("session=")`,
		`headers["proxy-authorization"] != ""`,
		`headers["x-api-key"] == "k-123"`,
		`headers.exists(k, headers[k].contains("internal-"))`,
		`headers["x-tenant"] == "acme"`, // not a credential: visible
	}
	for _, f := range filters {
		b, _ := json.Marshal(map[string]any{"url": be.URL + "/x", "filter": f})
		if code, out := call(t, "POST", admin, string(b)); code != 201 {
			t.Fatalf("create %s: %d %v", f, code, out)
		}
	}
	code, _, rb := send(t, c.Base()+"/publish", []byte(`{"a":1}`), "Webhook-Event-Type", "deal.won",
		"Authorization", "Bearer internal-s3cret", "Cookie", "session=abc", "Proxy-Authorization", "Basic eDp5",
		"X-Api-Key", "k-123", "X-Tenant", "acme")
	var out struct{ Endpoints int }
	_ = json.Unmarshal(rb, &out)
	if code != 202 || out.Endpoints != 1 {
		t.Fatalf("publish with credentials: %d %s; want 202 and only the x-tenant filter matching (%s)", code, rb,
			fmt.Sprint(len(filters)-1)+" filters read credentials")
	}
}
