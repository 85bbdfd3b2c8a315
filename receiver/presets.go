package receiver

import (
	"fmt"
	"sort"
	"strings"
)

// Preset bundles what is known of a sender: the defaults of its route, and how it sends
// its credential and delivery id (which `caddy webhook send` imitates). A preset never
// supplies a credential.
type Preset struct {
	// Schema is the embedded schema name, or "" for none.
	Schema string
	// EventID lists the event id sources.
	EventID []string
	// Scheme is the HMAC scheme the sender signs with ("" when it sends a plain secret).
	Scheme string
	// SecretHeader is the header the sender puts its plain secret in.
	SecretHeader string
	// SecretQuery is the query parameter that carries the secret, for senders that offer
	// no authentication (the secret goes into the URL registered with them).
	SecretQuery string
	// IDHeader is the header in which the sender names each delivery, when the event id is
	// read from it.
	IDHeader string
	// OrderBy and OrderKeys are the default stale-event guard (see OrderSpec), for senders
	// known to deliver out of order.
	OrderBy   string
	OrderKeys []string
}

// Presets are the known senders.
var Presets = map[string]Preset{
	"ploomes": {Schema: "ploomes", EventID: []string{"body_sha256"}, SecretHeader: ValidationKeyHeader},
	// TOTVS CRM workflows send the header the customer configures; Authorization is usual.
	// Its retries come >= 5 minutes later while newer events of the record keep flowing.
	"totvs_crm": {Schema: "totvs_crm", EventID: []string{"json:/eventId"}, SecretHeader: "Authorization",
		OrderBy: "time:json:/timestamp", OrderKeys: []string{"json:/source/row/id"}},
	// url is left out of SINtegre's key: its token changes on every send. The raw token is
	// the whole Authorization value (or Basic).
	"sintegre": {Schema: "sintegre", EventID: []string{"json:/nome", "json:/processo", "json:/dataProduto", "json:/periodicidade", "json:/periodicidadeFinal"},
		SecretHeader: "Authorization"},
	"rubeus": {Schema: "rubeus", EventID: []string{"body_sha256"}, SecretQuery: "key"},
	// Standard Webhooks senders hosted by Svix send svix-id instead of webhook-id.
	"standard": {EventID: []string{"header:webhook-id|svix-id"}, Scheme: "standard", IDHeader: "Webhook-Id"},
	"github":   {EventID: []string{"header:X-GitHub-Delivery"}, Scheme: "github", IDHeader: "X-GitHub-Delivery"},
	"stripe":   {EventID: []string{"json:/id"}, Scheme: "stripe"},
	"shopify":  {EventID: []string{"header:X-Shopify-Webhook-Id"}, Scheme: "shopify", IDHeader: "X-Shopify-Webhook-Id"},
	// Slack's Events API: event_id is unique per event (its retries carry the same one).
	"slack": {EventID: []string{"json:/event_id"}, Scheme: "slack"},
}

// SendsWith says, in a few words, how the preset's sender sends its credential.
func (p Preset) SendsWith() string {
	switch {
	case p.Scheme != "":
		return "signed with HMAC " + p.Scheme
	case p.SecretHeader != "":
		return p.SecretHeader + ": <secret>"
	case p.SecretQuery != "":
		return "?" + p.SecretQuery + "=<secret> in the URL"
	}
	return "no credential"
}

// LookupPreset returns the named preset, or an error that lists the known ones.
func LookupPreset(name string) (Preset, error) {
	p, ok := Presets[name]
	if !ok {
		return Preset{}, fmt.Errorf("unknown preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return p, nil
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
