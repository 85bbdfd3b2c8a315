package sender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/hookgate/hookgate/internal/celx"
	"github.com/hookgate/hookgate/internal/credential"
)

// FilterCostLimit bounds the work one filter evaluation may do (CEL's cost units, about
// one per value visited). It is not a limit per publish: a publish runs every matching
// endpoint's filter, so the publish as a whole has a budget too (DefaultFilterTime,
// DefaultFilterRegexBytes).
const FilterCostLimit = 100_000

// Defaults of the budget every publish's filters share (Options.FilterTime,
// Options.FilterRegexBytes).
const (
	// DefaultFilterTime is how long all the filters of one publish may run together.
	// Once it is spent, the filters still to run are not run: their endpoints do not get
	// the event, and each counts a budget failure (FilterStats).
	DefaultFilterTime = 20 * time.Millisecond
	// DefaultFilterRegexBytes is how many bytes `matches` calls may scan in one publish.
	// A call is charged before it runs, for the longest string it could be given (the
	// longest string value in the event or its headers), since one regular expression over
	// a 4 MB string takes longer than the whole time budget and cannot be interrupted.
	DefaultFilterRegexBytes = 256 << 10
)

// ErrFilterBudget is a filter's error when the publish's filter budget is used up.
var ErrFilterBudget = errors.New("the publish's filter budget is used up (time or regular-expression input)")

// MaxFilterLength caps a filter expression's length.
const MaxFilterLength = 4096

// Filter is a compiled CEL expression over a published event: `type` (string), `data` (the
// published JSON) and `headers` (the publish request's headers, lower-case names, first
// value, without the credential headers of internal/credential). It is compiled once, when an endpoint or subscription is stored, and evaluated
// at each publish.
type Filter struct {
	src string
	prg celx.Program
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
	prg, err := celx.NewProgram(env, ast, FilterCostLimit)
	if err != nil {
		return nil, fmt.Errorf("the filter does not compile: %w", err)
	}
	return &Filter{src: src, prg: prg}, nil
}

// String returns the expression.
func (f *Filter) String() string { return f.src }

// Match evaluates the filter on ev, within the budget ev's filters share (none if ev has
// no budget: see FilterInput). An evaluation error (a missing field, a type mismatch, the
// cost limit, the publish's budget used up: ErrFilterBudget) is a non-match, with the
// error.
func (f *Filter) Match(ev *FilterInput) (bool, error) {
	vars := ev.vars()
	out, err := f.prg.Eval(vars, ev.longest, &ev.budget)
	if err != nil {
		if errors.Is(err, celx.ErrBudget) {
			return false, ErrFilterBudget
		}
		return false, err
	}
	return out == types.True, nil
}

// FilterInput is a published event as filters see it. Its JSON body is decoded once, on
// the first filter that needs it, and shared by every filter of the publish, as is its
// budget (when Budget was called; without one, each filter has only FilterCostLimit).
type FilterInput struct {
	Type   string
	Body   []byte
	Header http.Header

	decoded bool
	v       map[string]any
	longest int64 // the longest string value in data and headers, in bytes
	budget  celx.Budget
}

// Budget makes every filter evaluated on in share a budget: d of time in all, from now
// (after which filters still to run fail with ErrFilterBudget, and one running a
// comprehension is interrupted), and regexBytes of input to `matches` calls. Call Release
// when the publish's filters are done. Zero values take the defaults.
func (in *FilterInput) Budget(ctx context.Context, d time.Duration, regexBytes int64) {
	if d <= 0 {
		d = DefaultFilterTime
	}
	if regexBytes <= 0 {
		regexBytes = DefaultFilterRegexBytes
	}
	in.budget.Start(ctx, d, regexBytes)
}

// Release frees the budget's timer, if a filter needed one.
func (in *FilterInput) Release() { in.budget.Release() }

func (in *FilterInput) vars() map[string]any {
	if !in.decoded {
		in.decoded = true
		hs := make(map[string]string, len(in.Header))
		for k, vs := range in.Header {
			// A filter is an oracle over what it reads (26 filters read a token one
			// character per publish): credential headers are never in `headers`.
			if len(vs) > 0 && !credential.IsCredentialHeader(k) {
				hs[strings.ToLower(k)] = vs[0]
				in.longest = max(in.longest, int64(len(vs[0])), int64(len(k)))
			}
		}
		t0 := time.Now()
		in.v = map[string]any{"type": in.Type, "data": in.decodeData(in.Body), "headers": hs}
		// Decoding is paid once per publish, whatever the number of filters, and
		// max_body bounds it: it is not the filters' spending (a 2 MB body took the
		// whole budget before any filter ran).
		in.budget.Extend(time.Since(t0))
		in.longest = max(in.longest, int64(len(in.Type)))
	}
	return in.v
}

func (in *FilterInput) decodeData(b []byte) any {
	v, longest, _ := celx.DecodeJSON(b)
	in.longest = max(in.longest, longest)
	return v
}
