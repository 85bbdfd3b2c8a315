package receiver

import "sort"

// Preset bundles the defaults for a known sender. A preset never supplies a credential.
type Preset struct {
	// Schema is the embedded schema name, or "" for none.
	Schema string
	// EventID lists the event id sources.
	EventID []string
}

// Presets are the known senders.
var Presets = map[string]Preset{
	"ploomes":   {Schema: "ploomes", EventID: []string{"body_sha256"}},
	"totvs_crm": {Schema: "totvs_crm", EventID: []string{"json:/eventId"}},
	// url is left out of SINtegre's key: its token changes on every send.
	"sintegre": {Schema: "sintegre", EventID: []string{"json:/nome", "json:/processo", "json:/dataProduto", "json:/periodicidade", "json:/periodicidadeFinal"}},
	"rubeus":   {Schema: "rubeus", EventID: []string{"body_sha256"}},
	// Standard Webhooks senders hosted by Svix send svix-id instead of webhook-id.
	"standard": {EventID: []string{"header:webhook-id|svix-id"}},
	"github":   {EventID: []string{"header:X-GitHub-Delivery"}},
	"stripe":   {EventID: []string{"json:/id"}},
	"shopify":  {EventID: []string{"header:X-Shopify-Webhook-Id"}},
	// Slack's Events API: event_id is unique per event (its retries carry the same one).
	"slack": {EventID: []string{"json:/event_id"}},
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
