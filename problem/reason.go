package problem

// Reason names why a request was refused, or how it ended. Reasons are stable snake_case
// strings: they end a problem's type URI and label metrics, log lines, the request log
// and the dashboard. This is the one list: the inbound core, the outbound core, the
// subscriptions API, the cross-site guard and the gateway all answer with these.
type Reason string

// How an inbound webhook ends (the outcomes of webhook_receive; see InboundReasons).
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
	// ReasonQueued: async mode made the webhook durable in the queue (202).
	ReasonQueued Reason = "queued"
	// ReasonQueueUnavailable: async mode could not queue an accepted webhook because the
	// queue's store is away (503); ReasonQueueFailed: the store refused the write (500).
	ReasonQueueUnavailable Reason = "queue_unavailable"
	ReasonQueueFailed      Reason = "queue_error"
	// ReasonNotReplicated: the event was written to the store's master, but fewer
	// replicas than replicas_ack asks for held it in time (503 and Retry-After). It stays
	// queued; a retry of a deduped async webhook, or of a publish with the same
	// Idempotency-Key, finds it and queues nothing twice.
	ReasonNotReplicated Reason = "not_replicated"
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
	// ReasonTransformFailed: the route's transform failed at run time (500, so the sender
	// retries); the request is kept in the request log, replayable once the transform is
	// fixed. On an outbound delivery it is the attempt's error.
	ReasonTransformFailed Reason = "transform_failed"
	// ReasonQuarantined: the schema refused the body of a route with `on_invalid
	// quarantine`; it is held (202) until an operator releases or drops it.
	ReasonQuarantined Reason = "quarantined"
	// ReasonQuarantineFull: the route's quarantine holds its max_bytes of requests (503, so
	// the sender retries); nothing it held was evicted.
	ReasonQuarantineFull Reason = "quarantine_full"
)

// InboundReasons are the reasons a webhook_receive request can end with (including the
// outcomes of async mode's hand-off), for metrics that resolve their series once and the
// dashboard's outcome filter.
var InboundReasons = []Reason{ReasonAccepted, ReasonQueued, ReasonDuplicate, ReasonInFlight, ReasonMethod,
	ReasonUnauthorized, ReasonTooLarge, ReasonMediaType, ReasonInvalidJSON, ReasonSchema, ReasonMissingEventID,
	ReasonStoreUnavailable, ReasonBodyRead, ReasonQueueUnavailable, ReasonQueueFailed, ReasonNotReplicated, ReasonStale, ReasonOrderInFlight,
	ReasonOrderValue, ReasonOrderAhead, ReasonTransformFailed, ReasonQuarantined, ReasonQuarantineFull}

// Publishing (webhook_publish) and feeds.
const (
	// ReasonMissingType: no event type, or a malformed one (or an over-long
	// Idempotency-Key), 400.
	ReasonMissingType Reason = "missing_event_type"
	// ReasonConflict: an Idempotency-Key reused with another body (422).
	ReasonConflict Reason = "idempotency_conflict"
	// ReasonUnknownFeed: a feed.<name> type that names no feed of the config (422).
	ReasonUnknownFeed Reason = "unknown_feed"
	// ReasonTooManyRecords: a feed publish over the batch cap (413).
	ReasonTooManyRecords Reason = "too_many_records"
	// ReasonCrossSite: a browser sent a state change from another site (403).
	ReasonCrossSite Reason = "cross_site_request"
)

// The subscriptions API and the admin API (every answer under /webhooks/).
const (
	// ReasonInvalidSubscription: a subscription that breaks a rule (422, with violations).
	ReasonInvalidSubscription Reason = "invalid_subscription"
	// ReasonTooManySubscriptions: the max_subscriptions cap is reached (422).
	ReasonTooManySubscriptions Reason = "too_many_subscriptions"
	// ReasonInvalidQuery: a query parameter out of range or malformed (400).
	ReasonInvalidQuery Reason = "invalid_query"
	// ReasonNotFound: no such route, endpoint, delivery, feed, request or subscription (404).
	ReasonNotFound Reason = "not_found"
	// ReasonStateConflict: the request cannot be done in the current state (409): a
	// concurrent change, a request that cannot be replayed, a replay that would move a
	// record's state backwards, a delivery of a deleted subscription.
	ReasonStateConflict Reason = "conflict"
	// ReasonStoreError: the store refused an operation for a reason other than an outage (500).
	ReasonStoreError Reason = "store_error"
	// ReasonInternal: anything else that went wrong on this side (500).
	ReasonInternal Reason = "internal_error"
	// ReasonNotRunning: the webhooks app is not running (503).
	ReasonNotRunning Reason = "not_running"
	// ReasonForbidden: the request came from where it may not (403), e.g. the dashboard
	// under a host name it is not served under.
	ReasonForbidden Reason = "forbidden"
)
