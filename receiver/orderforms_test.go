package receiver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/schemas"
)

// tsForm is one way of writing a timestamp, with the instant it means when it is a real one.
type tsForm struct {
	text    string
	instant time.Time
	real    bool // a calendar date and time of day (the leap second 60 included)
}

// form writes the fields as given (any digits) and says what instant they are.
func form(y, mo, d, h, mi, s int, frac, sep, zone string) tsForm {
	text := fmt.Sprintf("%04d-%02d-%02d%s%02d:%02d:%02d%s%s", y, mo, d, sep, h, mi, s, frac, zone)
	f := tsForm{text: text}
	off, zoneOK := 0, true
	switch {
	case zone == "Z" || zone == "z":
	case zone != "" && (zone[0] == '+' || zone[0] == '-') && (len(zone) == 6 && zone[3] == ':' && digits(zone[1:3]+zone[4:]) || (len(zone) == 5 || len(zone) == 3) && digits(zone[1:])):
		hh, _ := strconv.Atoi(zone[1:3])
		mm := 0
		if len(zone) > 3 {
			mm, _ = strconv.Atoi(zone[len(zone)-2:])
		}
		zoneOK = hh <= 23 && mm <= 59
		off = (hh*60 + mm) * 60
		if zone[0] == '-' {
			off = -off
		}
	default:
		zoneOK = false
	}
	ns := 0
	fracOK := frac == "" || len(frac) > 1
	if len(frac) > 1 {
		digits := (frac[1:] + "000000000")[:9]
		ns, _ = strconv.Atoi(digits)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, min(s, 59), ns, time.FixedZone("", off))
	f.real = zoneOK && fracOK && (sep == "T" || sep == "t") && mo >= 1 && mo <= 12 && d >= 1 && h <= 23 && mi <= 59 && s <= 60 &&
		t.Day() == d && t.Month() == time.Month(mo) // no day beyond its month's last
	if s == 60 {
		t = t.Add(time.Second).Truncate(time.Second)
	}
	f.instant = t
	return f
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// forms walks the fields of the totvs_crm timestamp, every value the schema's pattern
// once admitted (any two digits) and the edges of each: dates in one walk, times of day
// and offsets in another.
func forms() []tsForm {
	var out []tsForm
	for _, y := range []int{0, 4, 100, 1600, 1677, 1900, 2000, 2023, 2024, 2025, 2100, 2262, 2400, 9999} {
		for _, mo := range []int{0, 1, 2, 4, 6, 9, 11, 12, 13, 99} {
			for _, d := range []int{0, 1, 28, 29, 30, 31, 32, 99} {
				out = append(out, form(y, mo, d, 9, 21, 0, "", "T", "-03:00"))
			}
		}
	}
	for _, h := range []int{0, 9, 23, 24, 99} {
		for _, mi := range []int{0, 59, 60} {
			for _, s := range []int{0, 59, 60, 61} {
				for _, frac := range []string{"", ".0", ".117", ".123456789", ".1234567891234", ",5", ",", "."} {
					for _, sep := range []string{"T", "t", " "} {
						for _, zone := range []string{"Z", "z", "+00:00", "-03:00", "-0300", "+0530", "+23:59", "-2359", "+24:00", "+2400", "-03:60", "-03", "+14", "+24", "-3:00", ""} {
							out = append(out, form(2024, 12, 31, h, mi, s, frac, sep, zone))
						}
					}
				}
			}
		}
	}
	return out
}

// Every timestamp the totvs_crm schema admits is one the stale-event guard orders, in the
// order of the instants they name; the schema admits exactly the real ones.
func TestEveryTimestampTheSchemaAdmitsIsOrderable(t *testing.T) {
	sch, err := schemas.Compile("totvs_crm")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"eventId":"6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20","timestamp":%q,"workflow":{"id":"a3e9d1c4-2f6b-4c8e-b1d7-5e0f9a2c6b13","description":"w"},` +
		`"trigger":{"id":"0b7d5e2a-9c41-4f3e-8a6d-1e2f3a4b5c6d","description":"t"},"source":{"object":{"id":"d2c4e6f8-1a3b-4c5d-9e7f-0a1b2c3d4e5f","description":"o"},"row":{"id":"9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"}}}`
	type ordered struct {
		f   tsForm
		enc string
	}
	var admitted []ordered
	all := forms()
	for _, f := range all {
		doc, p := parseJSON([]byte(fmt.Sprintf(body, f.text)), true, false, nil)
		if p != nil {
			t.Fatal(p.Detail)
		}
		schemaOK := sch.Validate(doc) == nil
		enc, encErr := order.Encode(order.Time, f.text)
		if schemaOK && encErr != nil {
			t.Errorf("%s: the schema admits it, the guard refuses it: %v", f.text, encErr)
		}
		if schemaOK != f.real {
			t.Errorf("%s: schema admits=%v, but it is a real timestamp=%v", f.text, schemaOK, f.real)
		}
		if schemaOK && encErr == nil {
			admitted = append(admitted, ordered{f, enc})
		}
	}
	if len(admitted) < 1000 {
		t.Fatalf("only %d of %d forms admitted: the walk is too narrow", len(admitted), len(all))
	}
	sort.SliceStable(admitted, func(i, j int) bool { return admitted[i].f.instant.Before(admitted[j].f.instant) })
	for i := 1; i < len(admitted); i++ {
		a, b := admitted[i-1], admitted[i]
		if a.f.instant.Equal(b.f.instant) != (a.enc == b.enc) || (a.f.instant.Before(b.f.instant) && !(a.enc < b.enc)) {
			t.Fatalf("%s (%v) and %s (%v) encode as %s and %s: out of order", a.f.text, a.f.instant, b.f.text, b.f.instant, a.enc, b.enc)
		}
	}
	// The forms TOTVS is known to write are among them.
	for _, ts := range []string{"2025-03-11T09:15:42.117-03:00", "2025-03-11T09:21:00-0300", "2025-03-11T12:21:00Z"} {
		if p, err := Validate("totvs_crm", []byte(fmt.Sprintf(body, ts))); err != nil || p != nil {
			t.Errorf("%s: %v %v", ts, p, err)
		}
	}
}

// order_max_ahead is a bound on times: on an int or string guard it is a config error.
func TestOrderMaxAheadIsForTimes(t *testing.T) {
	store := &memOrder{m: map[string]string{}}
	_, err := New(Options{Auth: keyAuth, Dedupe: -1, OrderStore: store, OrderMaxAhead: time.Hour,
		Order: &OrderSpec{Kind: order.Int, Value: "json:/seq", Keys: []string{"json:/id"}}})
	if err == nil || !strings.Contains(err.Error(), "order_max_ahead") {
		t.Fatalf("an int guard with order_max_ahead: %v", err)
	}
	if _, err := New(Options{Preset: "totvs_crm", Auth: keyAuth, Dedupe: -1, OrderStore: store, OrderMaxAhead: time.Hour}); err != nil {
		t.Fatal(err)
	}
}
