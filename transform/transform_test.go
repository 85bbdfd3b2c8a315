package transform

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/celx"
)

func example(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/transforms/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/samples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, side Side, src string, in *Input) (Output, error) {
	t.Helper()
	tr, err := Compile(side, src)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return tr.Run(context.Background(), in)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the output is not a JSON object: %v: %s", err, b)
	}
	return m
}

// The README's examples, on the real samples.
func TestExamples(t *testing.T) {
	out, err := run(t, Inbound, example(t, "ploomes-contact.cel"), &Input{Body: sample(t, "ploomes/contact-update.json"), Route: "ploomes"})
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, out.Body)
	want := map[string]any{"source": "ploomes", "kind": "Contacts.Update", "account": 57.0, "id": 2630362.0,
		"name": "Ploomes Sistemas Empresariais", "phone": "(11) 4380-7749", "tags": []any{287.0},
		"changed": []any{"LegalName", "OtherProperties", "Phones", "Tags"}}
	if ch, ok := got["changed"].([]any); ok { // a map's keys come in no order
		sortAny(ch)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ploomes:\n got %v\nwant %v", got, want)
	}

	out, err = run(t, Inbound, example(t, "totvs-opportunity.cel"), &Input{Body: sample(t, "totvs_crm/opportunity-won.json"),
		EventID: "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20"})
	if err != nil {
		t.Fatal(err)
	}
	got = decode(t, out.Body)
	want = map[string]any{"source": "totvs_crm", "event_id": "6f1c2a9e-4b7d-4e0a-9a51-3c2d8e7f1b20",
		"kind": "Opportunity.Opportunity won", "record_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
		"occurred_at": 1741695342.0,
		"url":         "https://crm.example.com/api/v11/opportunity/opportunities/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
		"workflow":    "Enviar oportunidade ganha ao ERP"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("totvs:\n got %v\nwant %v", got, want)
	}
}

func sortAny(xs []any) {
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if xs[j].(string) < xs[i].(string) {
				xs[i], xs[j] = xs[j], xs[i]
			}
		}
	}
}

func TestOutputIsDeterministicJSON(t *testing.T) {
	src := `{"z": 1, "a": [true, null, 1.5, "é\"\n\u0001"], "m": {"b": body.n, "a": uint(3)}, "big": 12345678901234567}`
	var first string
	for i := 0; i < 20; i++ {
		out, err := run(t, Inbound, src, &Input{Body: []byte(`{"n": 9007199254740993}`)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = string(out.Body)
		} else if string(out.Body) != first {
			t.Fatalf("run %d gave %s, run 0 %s", i, out.Body, first)
		}
	}
	want := `{"a":[true,null,1.5,"é\"\n\u0001"],"big":12345678901234567,"m":{"a":3,"b":9007199254740993},"z":1}`
	if first != want {
		t.Errorf("got  %s\nwant %s", first, want)
	}
	if !json.Valid([]byte(first)) {
		t.Error("not valid JSON")
	}
}

func TestWithHeadersAndVariables(t *testing.T) {
	h := http.Header{"X-Tenant": {"acme"}, "Authorization": {"Bearer secret"}, "X-My-Key": {"k"}}
	out, err := run(t, Inbound, `with_headers({"t": headers["x-tenant"], "r": route, "id": event_id, "n": headers.size()}, {"x-entity": body.e})`,
		&Input{Body: []byte(`{"e":"Deals"}`), Header: h, Hidden: []string{"x-my-key"}, Route: "crm", EventID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != `{"id":"e1","n":1,"r":"crm","t":"acme"}` {
		t.Errorf("body %s (credential headers must not be seen)", out.Body)
	}
	if out.Header.Get("X-Entity") != "Deals" || len(out.Header) != 1 {
		t.Errorf("headers %v", out.Header)
	}
	out, err = run(t, Outbound, `{"t": type, "e": endpoint, "id": event_id, "d": body}`,
		&Input{Body: []byte(`[1]`), Type: "deal.won", Endpoint: "erp", EventID: "evt_1"})
	if err != nil || string(out.Body) != `{"d":[1],"e":"erp","id":"evt_1","t":"deal.won"}` || out.Header != nil {
		t.Errorf("outbound: %s %v %v", out.Body, out.Header, err)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		side     Side
		src, msg string
	}{
		{Inbound, ``, "empty"},
		{Inbound, `{"a": `, "does not compile"},
		{Inbound, `{"a": nope}`, "undeclared reference to 'nope'"},
		{Outbound, `{"h": headers}`, "undeclared reference to 'headers'"},
		{Inbound, `"a string"`, "gives a string"},
		{Inbound, `1 + 2`, "gives a int"},
		{Inbound, strings.Repeat(" ", MaxLength) + "{}", "longer than"},
	} {
		_, err := Compile(c.side, c.src)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %.40q: %v, want %q", c.side, c.src, err, c.msg)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, c := range []struct {
		src, body, msg string
	}{
		{`{"id": body.New.Id}`, `{"Old": {}}`, "no such key: New"},
		{`body.x`, `{"x": "s"}`, "gave a string"},
		{`body`, `not json`, "not JSON"},
		{`{"x": 1.0 / 0.0}`, `{}`, "NaN or infinite"},
		{`{"x": b"ab"}`, `{}`, "bytes"},
		{`{"x": [with_headers({}, {})]}`, `{}`, "whole result"},
		{`with_headers({}, {"Content-Length": "1"})`, `{}`, "set by Hookgate"},
		{`with_headers({}, {"Webhook-Signature": "1"})`, `{}`, "set by Hookgate"},
		{`with_headers({}, {"X-Webhook-Verified": "true"})`, `{}`, "set by Hookgate"},
		{`with_headers({}, {"x-k": "1", "X-K": "2"})`, `{}`, "twice"},
		{`with_headers({}, {"bad name": "1"})`, `{}`, "not a header name"},
		{`with_headers({}, {"X-A": "a\nb"})`, `{}`, "cannot carry"},
		{`with_headers({}, {"X-A": body.n})`, `{"n": 1}`, "not a string"},
		{`{1: 2}`, `{}`, "JSON keys are strings"},
	} {
		_, err := run(t, Inbound, c.src, &Input{Body: []byte(c.body)})
		if err == nil || !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s on %s: %v, want %q", c.src, c.body, err, c.msg)
		}
	}
}

// A hostile transform (loops over loops over a large body) is stopped by its cost limit,
// and a slow one by its time budget.
func TestBudget(t *testing.T) {
	items := make([]int, 3000)
	big, _ := json.Marshal(map[string]any{"items": items})
	start := time.Now()
	_, err := run(t, Inbound, `{"x": body.items.map(a, body.items.map(b, a + b))}`, &Input{Body: big})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "over its budget") {
		t.Fatalf("nested loops over 3000 items: %v, want a budget failure", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refused only after %v", d)
	}

	// A shared budget that is used up refuses before running.
	var b celx.Budget
	b.Start(context.Background(), time.Nanosecond, 1<<20)
	defer b.Release()
	time.Sleep(time.Millisecond)
	_, err = run(t, Outbound, `{"a": body}`, &Input{Body: []byte(`{}`), Budget: &b})
	if !errors.Is(err, ErrBudget) {
		t.Errorf("an expired shared budget: %v", err)
	}
	// Regular expressions are charged against the regex bytes.
	var rb celx.Budget
	rb.Start(context.Background(), time.Second, 100)
	defer rb.Release()
	_, err = run(t, Outbound, `{"m": body.s.matches("a+")}`, &Input{Body: []byte(`{"s": "` + strings.Repeat("a", 200) + `"}`), Budget: &rb})
	if !errors.Is(err, ErrBudget) {
		t.Errorf("matches over 200 bytes with 100 left: %v", err)
	}
}

func TestOutputCap(t *testing.T) {
	body, _ := json.Marshal(map[string]string{"s": strings.Repeat("x", 1<<20)})
	_, err := run(t, Inbound, `[body.s, body.s, body.s, body.s, body.s, body.s, body.s, body.s, body.s, body.s, body.s, body.s]`, &Input{Body: body})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "over 10 MB") {
		t.Errorf("12 MB of output: %v", err)
	}
}

func TestCostLimit(t *testing.T) {
	items := make([]int, 1500)
	big, _ := json.Marshal(map[string]any{"items": items})
	var b celx.Budget
	b.Start(context.Background(), time.Minute, 1<<20) // time is not what stops it
	defer b.Release()
	_, err := run(t, Inbound, `{"x": body.items.map(a, body.items.map(b, a + b))}`, &Input{Body: big, Budget: &b})
	if !errors.Is(err, ErrBudget) || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("2,250,000 iterations: %v, want the cost limit", err)
	}
}

// ploomes1K is the Ploomes contact update sample grown to about 1 KB (a deal with more
// custom fields and phones is that size).
func ploomes1K(b testing.TB) []byte {
	var m map[string]any
	if err := json.Unmarshal(sample(b, "ploomes/contact-update.json"), &m); err != nil {
		b.Fatal(err)
	}
	nw := m["New"].(map[string]any)
	nw["Phones"] = append(nw["Phones"].([]any), map[string]any{"PhoneNumber": "(11) 99876-5432", "TypeId": 2, "CountryId": 76})
	nw["OtherProperties"] = map[string]any{"contact_check": true, "contact_segment": "Indústria", "contact_origin": "Site",
		"contact_owner_email": "vendas@example.com.br", "contact_cnpj": "12.345.678/0001-90", "contact_notes": strings.Repeat("obs ", 40)}
	out, _ := json.Marshal(m)
	return out
}

// BenchmarkTransform is the cost of the README's Ploomes transform on a 1 KB body:
// decoding, evaluation and encoding the result (goal: ≤ 20 µs).
func BenchmarkTransform(b *testing.B) {
	body := ploomes1K(b)
	for _, c := range []struct{ name, src string }{
		{"ploomes_example", example(b, "ploomes-contact.cel")},
		// a typical reshaping: a few fields picked, one computed
		{"typical", `{"id": body.New.Id, "name": body.New.LegalName, "account": body.AccountId, "kind": body.Entity + "." + body.Action, "fields": body.New.OtherProperties}`},
		{"identity", `body`},
	} {
		tr, err := Compile(Inbound, c.src)
		if err != nil {
			b.Fatal(err)
		}
		in := &Input{Body: body, Route: "ploomes", Header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Ploomes"}}}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
