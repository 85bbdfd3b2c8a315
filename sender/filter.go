package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
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

// filterInterruptEvery is how many comprehension iterations run between checks of the
// publish's deadline.
const filterInterruptEvery = 16

// MaxFilterLength caps a filter expression's length.
const MaxFilterLength = 4096

// Filter is a compiled CEL expression over a published event: `type` (string), `data` (the
// published JSON) and `headers` (the publish request's headers, lower-case names, first
// value, without the credential headers of internal/credential). It is compiled once, when an endpoint or subscription is stored, and evaluated
// at each publish.
type Filter struct {
	src string
	prg cel.Program
	// regexCalls is how many `matches` calls the expression has: each evaluation is
	// charged that many times the longest string of the event first.
	regexCalls int64
	// loops tells whether the expression has a comprehension (map, all, exists…), the only
	// way it can run long enough to need interrupting: only then is it evaluated under the
	// publish's deadline as a context (which costs allocations per evaluation).
	loops bool
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
	prg, err := env.Program(ast, cel.CostLimit(FilterCostLimit), cel.EvalOptions(cel.OptOptimize),
		cel.InterruptCheckFrequency(filterInterruptEvery))
	if err != nil {
		return nil, fmt.Errorf("the filter does not compile: %w", err)
	}
	f := &Filter{src: src, prg: prg}
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			if e.AsCall().FunctionName() == overloads.Matches {
				f.regexCalls++
			}
		case celast.ComprehensionKind:
			f.loops = true
		}
	}))
	return f, nil
}

// String returns the expression.
func (f *Filter) String() string { return f.src }

// Match evaluates the filter on ev, within the budget ev's filters share (none if ev has
// no budget: see FilterInput). An evaluation error (a missing field, a type mismatch, the
// cost limit, the publish's budget used up: ErrFilterBudget) is a non-match, with the
// error.
func (f *Filter) Match(ev *FilterInput) (bool, error) {
	vars := ev.vars()
	b := &ev.budget
	if !b.set || !f.loops {
		if b.set {
			if !time.Now().Before(b.deadline) {
				return false, ErrFilterBudget
			}
			if f.regexCalls > 0 && !b.chargeRegex(f.regexCalls*(ev.longest+1)) {
				return false, ErrFilterBudget
			}
		}
		out, _, err := f.prg.Eval(vars)
		if err != nil {
			return false, err
		}
		return out == types.True, nil
	}
	ctx := b.context()
	if ctx.Err() != nil {
		return false, ErrFilterBudget
	}
	if f.regexCalls > 0 && !b.chargeRegex(f.regexCalls*(ev.longest+1)) {
		return false, ErrFilterBudget
	}
	out, _, err := f.prg.ContextEval(ctx, vars)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%w: %v", ErrFilterBudget, err)
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
	budget  filterBudget
}

// filterBudget is what a publish's filters may still spend. Its deadline becomes a
// context only when a filter with a comprehension runs, so a publish of ordinary filters
// allocates nothing for it.
type filterBudget struct {
	set       bool
	parent    context.Context
	deadline  time.Time
	regexLeft int64
	ctx       context.Context
	cancel    context.CancelFunc
}

func (b *filterBudget) context() context.Context {
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithDeadline(b.parent, b.deadline)
	}
	return b.ctx
}

func (b *filterBudget) chargeRegex(n int64) bool {
	if n > b.regexLeft {
		return false
	}
	b.regexLeft -= n
	return true
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
	in.budget = filterBudget{set: true, parent: ctx, deadline: time.Now().Add(d), regexLeft: regexBytes}
}

// Release frees the budget's timer, if a filter needed one.
func (in *FilterInput) Release() {
	if in.budget.cancel != nil {
		in.budget.cancel()
	}
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
				in.longest = max(in.longest, int64(len(vs[0])), int64(len(k)))
			}
		}
		t0 := time.Now()
		in.v = map[string]any{"type": in.Type, "data": in.decodeData(in.Body), "headers": hs}
		if in.budget.set && in.budget.ctx == nil {
			// Decoding is paid once per publish, whatever the number of filters, and
			// max_body bounds it: it is not the filters' spending (a 2 MB body took
			// the whole budget before any filter ran).
			in.budget.deadline = in.budget.deadline.Add(time.Since(t0))
		}
		in.longest = max(in.longest, int64(len(in.Type)))
	}
	return in.v
}

// decodeData decodes JSON for CEL: integers stay integers (int64, so `data.id ==
// 12345678901234567` is exact), other numbers are doubles. Invalid JSON is null. It notes
// the longest string (key or value).
func (in *FilterInput) decodeData(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return in.numbers(v)
}

func (in *FilterInput) numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case string:
		in.longest = max(in.longest, int64(len(x)))
	case map[string]any:
		for k, e := range x {
			in.longest = max(in.longest, int64(len(k)))
			x[k] = in.numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = in.numbers(e)
		}
	}
	return v
}
