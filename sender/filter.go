package sender

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/hookgate/hookgate/internal/credential"
)

// FilterCostLimit bounds the work one filter evaluation may do (CEL's cost units, about
// one per value visited): a filter written by a subscriber cannot make publishing slow.
const FilterCostLimit = 100_000

// MaxFilterLength caps a filter expression's length.
const MaxFilterLength = 4096

// Filter is a compiled CEL expression over a published event: `type` (string), `data` (the
// published JSON) and `headers` (the publish request's headers, lower-case names, first
// value, without the credential headers of internal/credential). It is compiled once, when an endpoint or subscription is stored, and evaluated
// at each publish.
type Filter struct {
	src string
	prg cel.Program
}

var (
	filterEnvOnce sync.Once
	filterEnv     *cel.Env
	filterEnvErr  error
)

func celEnv() (*cel.Env, error) {
	filterEnvOnce.Do(func() {
		filterEnv, filterEnvErr = cel.NewEnv(
			cel.Variable("type", cel.StringType),
			cel.Variable("data", cel.DynType),
			cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
			cel.CrossTypeNumericComparisons(true),
		)
	})
	return filterEnv, filterEnvErr
}

// CompileFilter compiles a CEL filter. It is an error if the expression does not parse,
// names unknown variables or functions, or is not boolean.
func CompileFilter(src string) (*Filter, error) {
	if len(src) > MaxFilterLength {
		return nil, fmt.Errorf("the filter is longer than %d characters", MaxFilterLength)
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("filter environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("the filter does not compile: %s", strings.TrimSpace(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("the filter must be a boolean expression, but it is of type %s (compare it: `data.flag == true`)", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(FilterCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("the filter does not compile: %w", err)
	}
	return &Filter{src: src, prg: prg}, nil
}

// String returns the expression.
func (f *Filter) String() string { return f.src }

// Match evaluates the filter on ev. An evaluation error (a missing field, a type
// mismatch, the cost limit) is a non-match, with the error.
func (f *Filter) Match(ev *FilterInput) (bool, error) {
	out, _, err := f.prg.Eval(ev.vars())
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}

// FilterInput is a published event as filters see it. Its JSON body is decoded once, on
// the first filter that needs it, and shared by every filter of the publish.
type FilterInput struct {
	Type   string
	Body   []byte
	Header http.Header

	decoded bool
	v       map[string]any
}

func (in *FilterInput) vars() map[string]any {
	if !in.decoded {
		in.decoded = true
		hs := make(map[string]string, len(in.Header))
		for k, vs := range in.Header {
			// A filter is an oracle over what it reads (26 filters read a token one
			// character per publish): credential headers are never in `headers`.
			if len(vs) > 0 && !credential.IsCredentialHeader(k) {
				hs[strings.ToLower(k)] = vs[0]
			}
		}
		in.v = map[string]any{"type": in.Type, "data": decodeData(in.Body), "headers": hs}
	}
	return in.v
}

// decodeData decodes JSON for CEL: integers stay integers (int64, so `data.id ==
// 12345678901234567` is exact), other numbers are doubles. Invalid JSON is null.
func decodeData(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return numbers(v)
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}
