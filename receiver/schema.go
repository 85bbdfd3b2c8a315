package receiver

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// maxViolations caps how many violations one answer lists.
const maxViolations = 100

// Violations flattens a validation error into its leaf violations, each with the JSON
// pointer of the offending value and a message.
func Violations(err error) []Violation {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Pointer: "", Message: err.Error()}}
	}
	var out []Violation
	seen := map[Violation]bool{}
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxViolations {
			return
		}
		if len(e.Causes) == 0 {
			v := Violation{Pointer: e.InstanceLocation, Message: e.Message}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// The validator's order follows map iteration; sort so the same body always gets the
	// same answer: by pointer, then message.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pointer != out[j].Pointer {
			return out[i].Pointer < out[j].Pointer
		}
		return out[i].Message < out[j].Message
	})
	return out
}

func schemaProblem(err error) *Problem {
	vs := Violations(err)
	p := newProblem(http.StatusUnprocessableEntity, ReasonSchema, "Schema Violation",
		fmt.Sprintf("the body does not match the schema: %d violation(s)", len(vs)))
	p.Errors = vs
	return p
}

// Validate checks body as the gateway would (JSON syntax, limits, schema) and returns the
// problem it would answer with, or nil. The command line uses it.
func Validate(schemaNameOrPath string, body []byte) (*Problem, error) {
	rc, err := New(Options{Auth: []AuthSpec{{Kind: AuthNone}}, Schema: schemaNameOrPath, Dedupe: -1})
	if err != nil {
		return nil, err
	}
	doc, p := parseJSON(body, rc.schema != nil, rc.foldKeys)
	if p != nil {
		return p, nil
	}
	if rc.schema != nil {
		if verr := rc.schema.Validate(doc); verr != nil {
			return schemaProblem(verr), nil
		}
	}
	return nil, nil
}
