package receiver

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/schemas"
)

// Records checks the records published to a feed against the feed's schema.
type Records struct {
	schema *jsonschema.Schema
	names  map[string]string
	max    int64
}

// NewRecords compiles the feed's schema (an embedded name or a file). The schema may
// describe one record, or an array of records (as Rubeus' Serviços schemas do): each
// record is checked as a one-record array then.
func NewRecords(schemaNameOrPath string, maxBody int64) (*Records, error) {
	s, err := schemas.Compile(schemaNameOrPath)
	if err != nil {
		return nil, err
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &Records{schema: s, names: propertyNames(s), max: maxBody}, nil
}

// arraySchema tells whether the schema describes an array of records.
func (rs *Records) arraySchema() bool {
	for _, t := range rs.schema.Types {
		if t == "array" {
			return true
		}
	}
	return rs.schema.Items2020 != nil || rs.schema.Items != nil
}

// Split reads a published body of records, one JSON object or an array of them, checks the
// JSON as webhooks are checked and every record against the schema, and returns each
// record's exact bytes. One bad record refuses them all: 422 naming the record's index,
// with pointers into the published body (/<index>/…).
func (rs *Records) Split(body []byte) ([][]byte, *Problem) {
	if _, p := parseJSON(body, false, true, nil); p != nil {
		return nil, p
	}
	var raws [][]byte
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := jsontext.NewDecoder(bytes.NewReader(trimmed))
		if _, err := dec.ReadToken(); err != nil {
			return nil, syntaxProblem(err, body)
		}
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, syntaxProblem(err, body)
			}
			raws = append(raws, bytes.Clone(v))
		}
	} else {
		raws = [][]byte{bytes.Clone(trimmed)}
	}
	if len(raws) == 0 {
		return nil, newProblem(http.StatusUnprocessableEntity, problem.ReasonSchema, "Schema Violation", "the body holds no record")
	}
	// Every bad record is named (its violations, up to maxViolations in all), so a
	// publisher fixes a batch in one round, not one record per try.
	var bad []int
	var errs []Violation
	for i, raw := range raws {
		rec, p := parseJSON(raw, true, true, rs.names)
		if p != nil {
			return nil, p
		}
		if m, ok := rec.(map[string]any); !ok || m == nil {
			bad = append(bad, i)
			if len(errs) < maxViolations {
				errs = append(errs, Violation{Pointer: "/" + strconv.Itoa(i), Message: "not a JSON object: a record is an object"})
			}
			continue
		}
		var v any = rec
		if rs.arraySchema() {
			v = []any{rec}
		}
		if err := rs.schema.Validate(v); err != nil {
			bad = append(bad, i)
			if room := maxViolations - len(errs); room > 0 {
				vs := Violations(err)
				reindex(vs, rs.arraySchema(), i)
				errs = append(errs, vs[:min(len(vs), room)]...)
			}
		}
	}
	if len(bad) > 0 {
		p := newProblem(http.StatusUnprocessableEntity, problem.ReasonSchema, "Schema Violation",
			fmt.Sprintf("%s not match the feed's schema: nothing of this request was stored", badRecords(bad)))
		p.Errors = errs
		return nil, p
	}
	return raws, nil
}

// badRecords names the bad records' indexes for a problem's detail: "record 3 does",
// "records 1, 2 and 7 do", at most 20 of them named.
func badRecords(bad []int) string {
	if len(bad) == 1 {
		return "record " + strconv.Itoa(bad[0]) + " does"
	}
	const named = 20
	parts := make([]string, 0, min(len(bad), named))
	for _, i := range bad[:min(len(bad), named)] {
		parts = append(parts, strconv.Itoa(i))
	}
	if len(bad) > named {
		return fmt.Sprintf("%d records (%s, …) do", len(bad), strings.Join(parts, ", "))
	}
	return "records " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1] + " do"
}

// reindex rewrites violation pointers to point into the published array: /<i>/….
func reindex(vs []Violation, wrapped bool, i int) {
	prefix := "/" + strconv.Itoa(i)
	for j := range vs {
		ptr := vs[j].Pointer
		if wrapped {
			ptr = strings.TrimPrefix(ptr, "/0")
		}
		vs[j].Pointer = prefix + ptr
		reindex(vs[j].Errors, wrapped, i)
	}
}

// Credentials checks the credential lines of a route that is not a webhook (a feed's
// caller): the header-only kinds (validation_key, header, bearer, basic, query, none).
type Credentials struct{ a *authenticator }

// NewCredentials checks specs; signature lines (hmac) need a body and are refused.
func NewCredentials(specs []AuthSpec) (*Credentials, error) {
	for i, s := range specs {
		if s.Kind == AuthHMAC {
			return nil, fmt.Errorf("auth line %d: hmac needs a signed body; a caller that pulls records sends none", i+1)
		}
	}
	a, err := newAuthenticator(specs)
	if err != nil {
		return nil, err
	}
	return &Credentials{a: a}, nil
}

// Check reports whether r carries a valid credential.
func (c *Credentials) Check(r *http.Request) bool {
	ok, _ := c.a.checkHeaders(r)
	return ok
}

// Unauthorized is the 401 answer (the same body whatever was wrong).
func (c *Credentials) Unauthorized() *Problem { return c.a.unauthorized() }
