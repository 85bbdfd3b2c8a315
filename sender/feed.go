package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender/queue"
)

// Feed defaults and limits.
const (
	// MaxPageSize is the most records one call gets: Rubeus cancels a call that returns more.
	MaxPageSize = 1000
	// DefaultFeedRetention is how long served records stay readable (and requeueable).
	DefaultFeedRetention = 72 * time.Hour
	// feedLease is how long a page's records are hidden from other calls while it is being
	// answered. A process that dies mid-answer leaves them to the next call after this.
	feedLease = 3 * time.Minute
)

// ErrCut is returned by Feed.Serve when the answer could not be written whole: its
// records stay pending for the next call.
var ErrCut = errors.New("the answer was cut off")

// FeedOptions configure a feed.
type FeedOptions struct {
	// PageSize is the most records a call gets. Default and maximum MaxPageSize.
	PageSize int
	// Retention is how long served records stay readable. Default DefaultFeedRetention.
	Retention time.Duration
	// Split checks a published body against the feed's schema and splits it into its
	// records (a JSON array of records, or one record), or returns the problem to answer.
	// Default: the body is one record, unchecked.
	Split func(body []byte) ([][]byte, *problem.Problem)
}

// Feed is a queue of records that a caller pulls in pages (Rubeus' Serviços calls the
// customer's URL for them), instead of deliveries pushed to an endpoint. Its records are
// the queue's deliveries of an endpoint of its own, with no workers: a call leases up to a
// page of them, oldest first, and marks them served only once the whole answer was
// written; so two concurrent calls never get the same record, and an answer cut off
// mid-way leaves its records for the next call.
type Feed struct {
	s        *Sender
	name     string
	endpoint string
	opts     FeedOptions

	mu   sync.Mutex
	last FeedCall
}

// FeedCall describes the last call a feed answered.
type FeedCall struct {
	// At is when it was answered.
	At time.Time `json:"at"`
	// From is the caller's address.
	From string `json:"from"`
	// Records is how many records it got.
	Records int `json:"records"`
	// Bytes is the answer's size.
	Bytes int `json:"bytes"`
	// Status is the answer's HTTP status.
	Status int `json:"status"`
}

// FeedStatus is what the admin API shows of a feed.
type FeedStatus struct {
	// Name is the feed's name.
	Name string `json:"name"`
	// Pending is how many records wait to be served.
	Pending int64 `json:"pending"`
	// Served is how many served records are still kept (for requeues).
	Served int64 `json:"served"`
	// LastCall is the last call answered, if any.
	LastCall *FeedCall `json:"last_call,omitempty"`
}

// feedEndpoint is the queue endpoint that holds a feed's records.
func feedEndpoint(name string) string { return FeedPrefix + name }

// AddFeed makes the named feed. Feed names follow endpoint names' rules.
func (s *Sender) AddFeed(name string, opts FeedOptions) (*Feed, error) {
	if !queue.ValidEndpointName(feedEndpoint(name)) {
		return nil, fmt.Errorf("feed name %q: use letters, digits, '_', '-' or '.'", name)
	}
	if opts.PageSize <= 0 {
		opts.PageSize = MaxPageSize
	}
	if opts.PageSize > MaxPageSize {
		return nil, fmt.Errorf("feed %s: page_size %d is over Rubeus' limit of %d records", name, opts.PageSize, MaxPageSize)
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultFeedRetention
	}
	if opts.Split == nil {
		opts.Split = func(body []byte) ([][]byte, *problem.Problem) { return [][]byte{body}, nil }
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feeds == nil {
		s.feeds = map[string]*Feed{}
	}
	if _, dup := s.feeds[name]; dup {
		return nil, fmt.Errorf("feed %s is defined twice", name)
	}
	f := &Feed{s: s, name: name, endpoint: feedEndpoint(name), opts: opts}
	s.feeds[name] = f
	return f, nil
}

// Feed returns the named feed.
func (s *Sender) Feed(name string) (*Feed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.feeds[name]
	return f, ok
}

// Feeds returns every feed, in no particular order.
func (s *Sender) Feeds() []*Feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Feed, 0, len(s.feeds))
	for _, f := range s.feeds {
		out = append(out, f)
	}
	return out
}

// Name returns the feed's name.
func (f *Feed) Name() string { return f.name }

// Endpoint is the queue endpoint that holds the feed's records (their delivery ids start
// with it).
func (f *Feed) Endpoint() string { return f.endpoint }

// Split checks a published body and splits it into the feed's records (FeedOptions.Split).
func (f *Feed) Split(body []byte) ([][]byte, *problem.Problem) { return f.opts.Split(body) }

// MaxFeedBatch is the most records one publish may carry: one write of at most this
// many records (about 30 MB of 3 KB Contato records) keeps a publish well under its 30 s.
const MaxFeedBatch = 10000

// ErrBatchTooLarge is returned by Feed.Publish for more than MaxFeedBatch records.
var ErrBatchTooLarge = fmt.Errorf("a feed publish carries at most %d records", MaxFeedBatch)

// Publish stores records (each a JSON value, already validated) durably as pending, in
// one store write, served in the order given. With an idempotency key, record i gets a
// fixed id from the key and i, so a repeated request stores nothing new (Replayed). It
// returns once every record is durable; on an error some may be stored (on Redis), and a
// retry with the same key completes the set without duplicates.
func (f *Feed) Publish(ctx context.Context, idempotencyKey string, records [][]byte) (PublishResult, error) {
	if len(idempotencyKey) > 255 {
		return PublishResult{}, ErrKeyTooLong
	}
	if len(records) > MaxFeedBatch {
		return PublishResult{}, ErrBatchTooLarge
	}
	res := PublishResult{Endpoints: 1}
	now := time.Now().UTC()
	evs := make([]queue.Event, len(records))
	for i, rec := range records {
		id := queue.NewEventID()
		if idempotencyKey != "" {
			id = queue.IdempotentEventID(idempotencyKey + "#" + strconv.Itoa(i))
		}
		// One microsecond apart: the records' creation times are their publish order,
		// which a requeue restores.
		evs[i] = queue.Event{ID: id, Type: FeedPrefix + f.name, Body: rec, Created: now.Add(time.Duration(i) * time.Microsecond)}
	}
	if len(evs) > 0 {
		res.ID = evs[0].ID
	}
	created, err := f.s.queue.EnqueueBatch(ctx, f.endpoint, evs)
	if err != nil {
		return PublishResult{}, err
	}
	res.Replayed = idempotencyKey != "" && created == 0 && len(records) > 0
	return res, nil
}

// Serve answers one call: 200 with a JSON array of up to a page of pending records, oldest
// first, each byte for byte as published ([] when none is pending). The records are marked
// served only when the whole answer was written; if writing fails they are released for
// the next call. A store failure is a 503 and serves nothing.
func (f *Feed) Serve(ctx context.Context, w http.ResponseWriter, from string) (int, error) {
	ds, err := f.s.queue.Lease(ctx, f.endpoint, f.opts.PageSize, time.Now(), feedLease)
	if err != nil {
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the feed's store cannot be reached; nothing was served; call again later").WithHeader("Retry-After", "30").Write(w)
		f.called(from, 0, 0, http.StatusServiceUnavailable)
		return 0, fmt.Errorf("leasing feed %s: %w", f.name, err)
	}
	size := 2
	for _, d := range ds {
		size += len(d.Event.Body) + 1
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteByte('[')
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(d.Event.Body)
	}
	b.WriteByte(']')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, werr := w.Write(b.Bytes())
	if werr == nil {
		werr = http.NewResponseController(w).Flush()
	}
	// Only a failed write means the caller did not get the page. A request context that
	// ended after a complete write is a caller that hung up once it had read it all.
	bg := context.WithoutCancel(ctx)
	if werr != nil {
		if len(ds) > 0 {
			_ = f.s.queue.Release(bg, ds)
		}
		f.called(from, 0, b.Len(), http.StatusOK)
		return 0, fmt.Errorf("feed %s: %w; its %d records stay pending: %w", f.name, ErrCut, len(ds), werr)
	}
	if len(ds) > 0 {
		now := time.Now().UTC()
		results := make([]queue.Result, len(ds))
		for i, d := range ds {
			results[i] = queue.Result{Delivery: d, Outcome: queue.Done, Keep: f.opts.Retention,
				Attempt: queue.Attempt{At: now, Status: http.StatusOK}}
		}
		if err := f.s.queue.Finish(bg, results); err != nil {
			// The caller has them; unrecorded, they are served again after the lease (at
			// least once, never lost).
			f.called(from, len(ds), b.Len(), http.StatusOK)
			return len(ds), fmt.Errorf("feed %s: recording %d served records: %w", f.name, len(ds), err)
		}
	}
	f.called(from, len(ds), b.Len(), http.StatusOK)
	return len(ds), nil
}

func (f *Feed) called(from string, records, size, status int) {
	f.mu.Lock()
	f.last = FeedCall{At: time.Now().UTC(), From: from, Records: records, Bytes: size, Status: status}
	f.mu.Unlock()
}

// Requeue makes served records pending again: the one named by id (its event id, or its
// delivery id as /webhooks/deliveries?endpoint=feed.<name> lists it), or (id "") every one
// served at or after since. It returns how many.
func (f *Feed) Requeue(ctx context.Context, id string, since time.Time) (int, error) {
	if id != "" {
		if !strings.HasPrefix(id, f.endpoint+"~") { // an event id, not the listed delivery id
			id = queue.DeliveryID(f.endpoint, id)
		}
		if err := f.s.queue.Requeue(ctx, id); err != nil {
			return 0, err
		}
		return 1, nil
	}
	ds, err := f.s.queue.List(ctx, queue.Filter{Endpoints: []string{f.endpoint}, State: queue.Delivered, Limit: 1 << 30})
	if err != nil {
		return 0, err
	}
	// Served again in their publish order (List is newest first): the caller imports
	// the last version of a record it reads.
	ids := make([]string, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		if len(d.Attempts) == 0 || d.Attempts[len(d.Attempts)-1].At.Before(since) {
			continue
		}
		ids = append(ids, d.ID)
	}
	return f.s.queue.RequeueBatch(ctx, ids)
}

// Status returns the feed's counts and last call.
func (f *Feed) Status(ctx context.Context) (FeedStatus, error) {
	st, err := f.s.queue.Status(ctx, f.endpoint)
	if err != nil {
		return FeedStatus{Name: f.name}, err
	}
	out := FeedStatus{Name: f.name, Pending: st.Pending, Served: st.Delivered}
	f.mu.Lock()
	if !f.last.At.IsZero() {
		c := f.last
		out.LastCall = &c
	}
	f.mu.Unlock()
	return out, nil
}
