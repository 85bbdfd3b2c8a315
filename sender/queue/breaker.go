package queue

import (
	"fmt"
	"time"
)

// BreakerState is where an endpoint's circuit breaker stands.
type BreakerState string

// The states of a breaker. Stores keep Closed or Open; HalfOpen is how an open breaker
// whose cooldown has passed is reported (its next lease is the probe).
const (
	// BreakerClosed: deliveries are attempted as they come due.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen: no delivery is attempted; they stay pending, their attempt counts
	// untouched.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen: the cooldown has passed; one probe delivery is (or is about to be)
	// attempted, by one worker on any instance.
	BreakerHalfOpen BreakerState = "half_open"
)

// Breaker is the stored state of an endpoint's circuit breaker, shared by every instance
// on the store.
type Breaker struct {
	// State is BreakerClosed or BreakerOpen (the zero value reads as closed).
	State BreakerState `json:"state"`
	// Since is when the breaker last changed state (zero if it never did).
	Since time.Time `json:"since,omitzero"`
	// Until is, for an open breaker, when a probe may be attempted.
	Until time.Time `json:"until,omitzero"`
	// Cooldown is the open breaker's current cooldown (it grows on each failed probe).
	Cooldown time.Duration `json:"cooldown_ns,omitempty"`
	// Reason says why the breaker opened.
	Reason string `json:"reason,omitempty"`
	// Manual is set when an operator opened the breaker: no probe is attempted until an
	// operator closes it.
	Manual bool `json:"manual,omitempty"`
}

// Open reports whether the breaker holds deliveries back (open or half-open).
func (b Breaker) Open() bool { return b.State == BreakerOpen }

// Reported is the state as the admin API shows it at now: half_open for an automatic
// open breaker whose cooldown has passed, closed for the zero value.
func (b Breaker) Reported(now time.Time) BreakerState {
	switch {
	case b.State != BreakerOpen:
		return BreakerClosed
	case !b.Manual && !now.Before(b.Until):
		return BreakerHalfOpen
	default:
		return BreakerOpen
	}
}

// BreakerOpenError is what Lease returns while an endpoint's breaker holds its deliveries
// back: no lease was taken. Until is when the breaker next allows a probe (the end of the
// cooldown, or of another worker's probe lease); zero while an operator holds it open.
type BreakerOpenError struct {
	Endpoint string
	Until    time.Time
}

func (e *BreakerOpenError) Error() string {
	if e.Until.IsZero() {
		return fmt.Sprintf("the circuit breaker of endpoint %q is held open by an operator", e.Endpoint)
	}
	return fmt.Sprintf("the circuit breaker of endpoint %q is open until %s", e.Endpoint, e.Until.UTC().Format(time.RFC3339))
}
