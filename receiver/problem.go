package receiver

import "github.com/hookgate/hookgate/problem"

// Reason names why a request was refused (or how it ended): problem.Reason, the one list
// of reasons (problem.ReasonAccepted, problem.ReasonSchema, …).
type Reason = problem.Reason

// Violation is one schema violation (see problem.Violation).
type Violation = problem.Violation

// Problem is an RFC 9457 problem document, the body of every refusal (see problem.Problem).
type Problem = problem.Problem

const problemTypeBase = problem.TypeBase

func newProblem(status int, reason Reason, title, detail string) *Problem {
	return problem.New(status, reason, title, detail)
}
