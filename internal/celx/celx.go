// Package celx holds what Hookgate's CEL expressions share: the budget that every filter and
// transform of one publish (or one inbound request) spends together, and the decoding of a
// JSON body into the values CEL sees.
package celx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types/ref"
)

// ErrBudget is an expression's error when its budget is used up (time or
// regular-expression input).
var ErrBudget = errors.New("the budget of CEL expressions is used up (time or regular-expression input)")

// Budget is what the expressions of one publish (or one request) may still spend: a
// deadline and a number of bytes `matches` calls may scan. Its deadline becomes a context
// only when an expression with a comprehension runs, so ordinary expressions allocate
// nothing for it. The zero Budget is unset: expressions then have only their cost limit.
type Budget struct {
	set       bool
	parent    context.Context
	deadline  time.Time
	regexLeft int64
	ctx       context.Context
	cancel    context.CancelFunc
}

// Start sets the budget: d of time from now, regexBytes of `matches` input. Call Release
// when the expressions are done.
func (b *Budget) Start(ctx context.Context, d time.Duration, regexBytes int64) {
	*b = Budget{set: true, parent: ctx, deadline: time.Now().Add(d), regexLeft: regexBytes}
}

// Set reports whether Start was called.
func (b *Budget) Set() bool { return b.set }

// Context returns a context that ends at the deadline (made on first use).
func (b *Budget) Context() context.Context {
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithDeadline(b.parent, b.deadline)
	}
	return b.ctx
}

// Expired reports whether the deadline has passed.
func (b *Budget) Expired() bool {
	if b.ctx != nil {
		return b.ctx.Err() != nil
	}
	return !time.Now().Before(b.deadline)
}

// ChargeRegex takes n bytes of `matches` input, or reports that fewer are left.
func (b *Budget) ChargeRegex(n int64) bool {
	if n > b.regexLeft {
		return false
	}
	b.regexLeft -= n
	return true
}

// Extend moves the deadline by d, unless a context was already made from it (decoding a
// body is paid once, whatever the number of expressions, and is not theirs to spend).
func (b *Budget) Extend(d time.Duration) {
	if b.set && b.ctx == nil {
		b.deadline = b.deadline.Add(d)
	}
}

// Release frees the deadline's timer, if an expression needed one.
func (b *Budget) Release() {
	if b.cancel != nil {
		b.cancel()
	}
}

// Program is a compiled expression with what its budget needs to know of it.
type Program struct {
	prg cel.Program
	// regexCalls is how many `matches` calls the expression has: each evaluation is
	// charged that many times the longest string of its input first.
	regexCalls int64
	// loops tells whether the expression has a comprehension (map, all, exists…), the only
	// way it can run long enough to need interrupting: only then is it evaluated under the
	// budget's deadline as a context (which costs allocations per evaluation).
	loops bool
}

// RegexCalls is how many `matches` calls the expression has.
func (p *Program) RegexCalls() int64 { return p.regexCalls }

// InterruptEvery is how many comprehension iterations run between checks of the deadline.
const InterruptEvery = 16

// NewProgram plans a checked expression with a cost limit (CEL's cost units, about one per
// value visited).
func NewProgram(env *cel.Env, ast *cel.Ast, costLimit uint64) (Program, error) {
	prg, err := env.Program(ast, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptOptimize),
		cel.InterruptCheckFrequency(InterruptEvery))
	if err != nil {
		return Program{}, err
	}
	p := Program{prg: prg}
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			if e.AsCall().FunctionName() == overloads.Matches {
				p.regexCalls++
			}
		case celast.ComprehensionKind:
			p.loops = true
		}
	}))
	return p, nil
}

// Eval evaluates the program on vars within b (unless b is unset: then only the cost limit
// bounds it). longest is the longest string vars hold. A budget used up is an error
// wrapping ErrBudget.
func (p *Program) Eval(vars any, longest int64, b *Budget) (ref.Val, error) {
	if !b.set || !p.loops {
		if b.set {
			if b.Expired() {
				return nil, ErrBudget
			}
			if p.regexCalls > 0 && !b.ChargeRegex(p.regexCalls*(longest+1)) {
				return nil, ErrBudget
			}
		}
		out, _, err := p.prg.Eval(vars)
		return out, err
	}
	ctx := b.Context()
	if ctx.Err() != nil {
		return nil, ErrBudget
	}
	if p.regexCalls > 0 && !b.ChargeRegex(p.regexCalls*(longest+1)) {
		return nil, ErrBudget
	}
	out, _, err := p.prg.ContextEval(ctx, vars)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %v", ErrBudget, err)
	}
	return out, err
}
