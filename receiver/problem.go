package receiver

import "github.com/hookgate/hookgate/problem"

// Reason names why a request was refused (or how it ended). Reasons are stable strings:
// they label metrics and log lines.
type Reason string

// The reasons a request can end with.
const (
	ReasonAccepted         Reason = "accepted"
	ReasonDuplicate        Reason = "duplicate"
	ReasonInFlight         Reason = "in_flight"
	ReasonMethod           Reason = "method_not_allowed"
	ReasonUnauthorized     Reason = "unauthorized"
	ReasonTooLarge         Reason = "body_too_large"
	ReasonMediaType        Reason = "unsupported_media_type"
	ReasonInvalidJSON      Reason = "invalid_json"
	ReasonSchema           Reason = "schema_violation"
	ReasonMissingEventID   Reason = "missing_event_id"
	ReasonStoreUnavailable Reason = "store_unavailable"
	ReasonBodyRead         Reason = "body_read_error"
	ReasonQueued           Reason = "queued"
	// ReasonQueueUnavailable: async mode could not queue an accepted webhook because the
	// queue's store is away (503); ReasonQueueFailed: the store refused the write (500).
	ReasonQueueUnavailable Reason = "queue_unavailable"
	ReasonQueueFailed      Reason = "queue_error"
	ReasonMissingType      Reason = "missing_event_type"
	ReasonConflict         Reason = "idempotency_conflict"
	// ReasonStale: the stale-event guard found a newer event of the same record already
	// handed on (200, Webhook-Stale: true, not handed on).
	ReasonStale Reason = "stale"
	// ReasonOrderInFlight: another event of the same record is being handed on (409).
	ReasonOrderInFlight Reason = "order_in_flight"
	// ReasonOrderValue: the order value or record key is missing or not comparable (400).
	ReasonOrderValue Reason = "invalid_order_value"
	// ReasonOrderAhead: the event was handed on (and answered 2xx), but its order value is
	// further in the future than the guard's MaxAhead, so it was not recorded: one event
	// with a wrong date (or a sender's clock far ahead) cannot make its record's later
	// events stale.
	ReasonOrderAhead Reason = "order_ahead"
)

// InboundReasons are the reasons Handle can end a webhook request with (including the
// outcomes of async mode's hand-off), for metrics that resolve their series once.
var InboundReasons = []Reason{ReasonAccepted, ReasonQueued, ReasonDuplicate, ReasonInFlight, ReasonMethod,
	ReasonUnauthorized, ReasonTooLarge, ReasonMediaType, ReasonInvalidJSON, ReasonSchema, ReasonMissingEventID,
	ReasonStoreUnavailable, ReasonBodyRead, ReasonQueueUnavailable, ReasonQueueFailed, ReasonStale, ReasonOrderInFlight,
	ReasonOrderValue, ReasonOrderAhead}

// Violation is one schema violation (see problem.Violation).
type Violation = problem.Violation

// Problem is an RFC 9457 problem document, the body of every refusal (see problem.Problem).
type Problem = problem.Problem

const problemTypeBase = problem.TypeBase

func newProblem(status int, reason Reason, title, detail string) *Problem {
	return problem.New(status, string(reason), title, detail)
}
