package receiver

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/hookgate/hookgate/problem"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// maxViolations caps how many violations one answer lists.
const maxViolations = 100

// Violations turns a validation error into violations, each with the JSON pointer of the
// offending value and a message. A value that matches none of a oneOf's or anyOf's
// alternatives is one violation at its pointer ("matches none of N alternatives"), whose
// Errors are the failures of the closest alternative only: listing every branch's failures
// side by side (a Rubeus record checked against four record kinds) reads as if the value
// had to satisfy all of them.
func Violations(err error) []Violation {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{{Pointer: "", Message: err.Error()}}
	}
	budget := maxViolations
	return violations(ve, &budget, map[[2]string]bool{})
}

// violations converts e's causes; budget caps the leaves listed in all.
func violations(e *jsonschema.ValidationError, budget *int, seen map[[2]string]bool) []Violation {
	var out []Violation
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if *budget <= 0 {
			return
		}
		if len(e.Causes) == 0 {
			v := Violation{Pointer: e.InstanceLocation, Message: e.Message}
			if k := [2]string{v.Pointer, v.Message}; !seen[k] {
				seen[k] = true
				*budget--
				out = append(out, v)
			}
			return
		}
		if kw := alternativesKeyword(e.KeywordLocation); kw != "" && len(e.Causes) > 1 {
			out = append(out, alternatives(e, kw, budget))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(e)
	sortViolations(out)
	return out
}

// alternativesKeyword returns "oneOf" or "anyOf" when loc is such a keyword.
func alternativesKeyword(loc string) string {
	for _, kw := range []string{"oneOf", "anyOf"} {
		if strings.HasSuffix(loc, "/"+kw) {
			return kw
		}
	}
	return ""
}

// alternatives groups the failed branches of a oneOf or anyOf under one violation, with
// the closest branch's failures: the one whose failures lie deepest in the value (it got
// furthest), then the one with fewest, then the first.
func alternatives(e *jsonschema.ValidationError, kw string, budget *int) Violation {
	best, bestDepth, bestN := -1, -1, 0
	var bestVs []Violation
	for i, c := range e.Causes {
		b := maxViolations // measured without spending the real budget
		vs := violations(c, &b, map[[2]string]bool{})
		d := depth(vs)
		if best < 0 || d > bestDepth || (d == bestDepth && len(vs) < bestN) {
			best, bestDepth, bestN, bestVs = i, d, len(vs), vs
		}
	}
	if len(bestVs) > *budget {
		bestVs = bestVs[:max(*budget, 0)]
	}
	*budget -= len(bestVs)
	name := ""
	// A branch that is a $ref says which definition it is ("doesn't validate with '/$defs/contato'").
	if c := e.Causes[best]; strings.HasSuffix(c.KeywordLocation, "/$ref") {
		if _, ref, ok := strings.Cut(c.Message, "with '"); ok {
			name = " (" + strings.TrimSuffix(ref, "'") + ")"
		}
	}
	return Violation{
		Pointer: e.InstanceLocation,
		Message: fmt.Sprintf("matches none of the %d alternatives of %s; the closest, alternative %d%s, fails with the errors listed",
			len(e.Causes), kw, best+1, name),
		Errors: bestVs,
	}
}

// depth is how deep in the value the deepest of vs (or of their nested errors) points.
func depth(vs []Violation) int {
	d := -1
	for _, v := range vs {
		d = max(d, strings.Count(v.Pointer, "/"), depth(v.Errors))
	}
	return d
}

// sortViolations orders violations by pointer, then message, so the same body always gets
// the same answer (the validator's order follows map iteration).
func sortViolations(vs []Violation) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Pointer != vs[j].Pointer {
			return vs[i].Pointer < vs[j].Pointer
		}
		return vs[i].Message < vs[j].Message
	})
}

// propertyNames collects every property name a compiled schema (and the schemas it
// reaches) declares, for the decoder to reuse as map keys.
func propertyNames(root *jsonschema.Schema) map[string]string {
	names := map[string]string{}
	seen := map[*jsonschema.Schema]bool{}
	var walk func(s *jsonschema.Schema)
	walkAny := func(v any) {
		switch x := v.(type) {
		case *jsonschema.Schema:
			walk(x)
		case []*jsonschema.Schema:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for name, c := range s.Properties {
			names[name] = name
			walk(c)
		}
		for _, c := range s.PatternProperties {
			walk(c)
		}
		for _, c := range s.DependentSchemas {
			walk(c)
		}
		for _, c := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
			walkAny(c)
		}
		for _, c := range []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.DynamicRef, s.Not, s.If, s.Then, s.Else,
			s.Items2020, s.Contains, s.UnevaluatedProperties, s.UnevaluatedItems} {
			walk(c)
		}
		walkAny(s.Items)
		walkAny(s.AdditionalProperties)
		walkAny(s.AdditionalItems)
	}
	walk(root)
	return names
}

func schemaProblem(err error) *Problem {
	vs := Violations(err)
	p := newProblem(http.StatusUnprocessableEntity, problem.ReasonSchema, "Schema Violation",
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
	doc, p := parseJSON(body, rc.schema != nil, rc.foldKeys, rc.names)
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
