package sender

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// Defaults of a BreakerPolicy.
const (
	DefaultBreakerFailures    = 5
	DefaultBreakerRatio       = 0.5
	DefaultBreakerWindow      = time.Minute
	DefaultBreakerMinAttempts = 20
	DefaultBreakerCooldown    = 30 * time.Second
	// DefaultBreakerMaxCooldown caps the growing cooldown: with the defaults an app that
	// comes back is probed within 4 minutes (and a poll).
	DefaultBreakerMaxCooldown = 4 * time.Minute
)

// BreakerPolicy configures an endpoint's circuit breaker. The zero value is the breaker
// on, with the defaults above; a zero field takes its default.
//
// Counted as failures: attempts without an answer (refused, reset, timed out, DNS) and
// answers 5xx, 408 and 429. Other 4xx are the app refusing one event while it is up, and
// 2xx a success; an attempt that sent nothing (a failed transform) is not counted.
type BreakerPolicy struct {
	// Off disables the breaker: every due delivery is attempted on its schedule.
	Off bool
	// Failures is how many consecutive failed attempts open it. Default 5.
	Failures int
	// Ratio opens it when this share of the attempts over Window failed, once there were
	// at least MinAttempts. Default 0.5; 1 or more turns the ratio off.
	Ratio float64
	// Window is the ratio's window. Default 1m.
	Window time.Duration
	// MinAttempts is how many attempts the window needs before Ratio applies. Default 20.
	MinAttempts int
	// Cooldown is how long it stays open before the first probe; each failed probe doubles
	// it. Default 30s.
	Cooldown time.Duration
	// MaxCooldown caps the cooldown. Default 4m.
	MaxCooldown time.Duration
}

// WithDefaults fills the zero fields with the defaults.
func (p BreakerPolicy) WithDefaults() BreakerPolicy {
	if p.Off {
		return p
	}
	if p.Failures <= 0 {
		p.Failures = DefaultBreakerFailures
	}
	if p.Ratio <= 0 {
		p.Ratio = DefaultBreakerRatio
	}
	if p.Window <= 0 {
		p.Window = DefaultBreakerWindow
	}
	if p.MinAttempts <= 0 {
		p.MinAttempts = DefaultBreakerMinAttempts
	}
	if p.Cooldown <= 0 {
		p.Cooldown = DefaultBreakerCooldown
	}
	if p.MaxCooldown <= 0 {
		p.MaxCooldown = max(DefaultBreakerMaxCooldown, p.Cooldown)
	}
	return p
}

// Bounds of a BreakerPolicy's durations and counts: a cooldown under a second would turn
// probes into a flood that never dead-letters, one over a day would never probe.
const (
	MinBreakerDuration = time.Second
	MaxBreakerDuration = 24 * time.Hour
	MaxBreakerCount    = 100000
)

// Validate reports a policy that cannot work, judged with its defaults filled in (so a
// max_cooldown under the default cooldown is refused, as one under the given cooldown).
func (p BreakerPolicy) Validate() error {
	if p.Off {
		return nil
	}
	switch {
	case p.Failures < 0 || p.MinAttempts < 0 || p.Ratio < 0 || p.Window < 0 || p.Cooldown < 0 || p.MaxCooldown < 0:
		return errors.New("breaker: negative values are not allowed")
	case math.IsNaN(p.Ratio) || p.Ratio > 1:
		return errors.New("breaker: ratio must be between 0 and 1")
	case p.Failures > MaxBreakerCount || p.MinAttempts > MaxBreakerCount:
		return fmt.Errorf("breaker: failures and min_attempts are at most %d", MaxBreakerCount)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"window", p.Window}, {"cooldown", p.Cooldown}, {"max_cooldown", p.MaxCooldown}} {
		if d.v != 0 && (d.v < MinBreakerDuration || d.v > MaxBreakerDuration) {
			return fmt.Errorf("breaker: %s %s is not between 1s and 24h", d.name, d.v)
		}
	}
	if full := p.WithDefaults(); full.Cooldown > full.MaxCooldown {
		what := "cooldown " + full.Cooldown.String()
		if p.Cooldown == 0 {
			what += " (the default)"
		}
		return fmt.Errorf("breaker: %s is longer than max_cooldown %s", what, full.MaxCooldown)
	}
	return nil
}

// breakerBuckets is how many slices the ratio's window is kept in.
const breakerBuckets = 20

// breakerCounter is what one runner saw of its endpoint's attempts: consecutive failures
// and the failure ratio over the window. Each instance counts its own attempts; the first
// to reach a threshold opens the breaker in the store, for every instance.
type breakerCounter struct {
	mu          sync.Mutex
	p           BreakerPolicy
	consecutive int
	buckets     [breakerBuckets]struct {
		slot          int64
		total, failed int
	}
}

// failed reports whether an attempt counts as a failure for the breaker, and whether it
// counts at all.
func breakerFailure(a attempt) (failed, counts bool) {
	switch {
	case a.noRequest:
		return false, false
	case a.ok():
		return false, true
	case a.Status == 0 || a.Status >= 500 || a.Status == 408 || a.Status == 429:
		return true, true
	default:
		return false, true
	}
}

// record adds one attempt at now and says whether the breaker must open, and why.
func (c *breakerCounter) record(now time.Time, a attempt) (bool, string) {
	failed, counts := breakerFailure(a)
	if !counts {
		return false, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	width := max(c.p.Window/breakerBuckets, time.Millisecond)
	slot := now.UnixNano() / int64(width)
	b := &c.buckets[slot%breakerBuckets]
	if b.slot != slot {
		b.slot, b.total, b.failed = slot, 0, 0
	}
	b.total++
	if failed {
		b.failed++
		c.consecutive++
	} else {
		c.consecutive = 0
	}
	last := describe(a)
	if c.consecutive >= c.p.Failures {
		return true, fmt.Sprintf("%d consecutive failed attempts (last: %s)", c.consecutive, last)
	}
	if !failed || c.p.Ratio >= 1 {
		return false, ""
	}
	total, bad := 0, 0
	for _, b := range c.buckets {
		if b.slot > slot-breakerBuckets && b.slot <= slot {
			total += b.total
			bad += b.failed
		}
	}
	if total >= c.p.MinAttempts && float64(bad) >= c.p.Ratio*float64(total) {
		return true, fmt.Sprintf("%d of %d attempts failed in %s (last: %s)", bad, total, c.p.Window, last)
	}
	return false, ""
}

// reset forgets what was counted (the breaker opened, or closed again).
func (c *breakerCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consecutive = 0
	for i := range c.buckets {
		c.buckets[i].slot, c.buckets[i].total, c.buckets[i].failed = 0, 0, 0
	}
}

func describe(a attempt) string {
	if a.Status != 0 {
		return fmt.Sprintf("HTTP %d", a.Status)
	}
	if a.diagnosis != "" {
		return a.diagnosis
	}
	return a.Error
}

// BreakerObserver is told about every transition of a breaker this process made, for
// metrics. To is the state entered.
type BreakerObserver interface {
	BreakerTransition(endpoint string, to queue.BreakerState)
}

// afterAttempt feeds an attempt to the breaker: a probe's result closes or reopens it, and
// a failure past a threshold opens it. It runs in the attempt's goroutine, after judge and
// before the result is written.
func (r *runner) afterAttempt(dl queue.Delivery, a attempt) {
	if r.e.Breaker.Off {
		return
	}
	now := r.d.opts.Clock.Now()
	failed, counts := breakerFailure(a)
	switch {
	case dl.Probe && !counts:
		// Nothing was sent (its transform failed): the next lease probes with another.
	case dl.Probe && failed:
		r.reopen(now, describe(a))
	case dl.Probe:
		r.close(now, dl.ID, "the probe was answered ("+describe(a)+")")
	case r.gated(now):
		// In flight when this runner opened the breaker: already counted for.
	default:
		if open, why := r.brk.record(now, a); open {
			r.open(now, why)
		}
	}
}

// open opens the breaker in the store for every instance, after a threshold.
func (r *runner) open(now time.Time, why string) {
	p := r.e.Breaker
	b := queue.Breaker{Since: now.UTC(), Until: now.Add(p.Cooldown).UTC(), Cooldown: p.Cooldown, Reason: why}
	r.setOpen(b, "circuit breaker opened: no delivery is attempted until a probe succeeds")
}

// reopen opens the breaker again after a failed probe, with a longer cooldown.
func (r *runner) reopen(now time.Time, last string) {
	p := r.e.Breaker
	cd := p.Cooldown
	if st, err := r.status(); err == nil && st.Breaker.Cooldown > 0 {
		cd = min(2*st.Breaker.Cooldown, p.MaxCooldown)
	}
	b := queue.Breaker{Since: now.UTC(), Until: now.Add(cd).UTC(), Cooldown: cd, Reason: "the probe failed (" + last + ")"}
	r.setOpen(b, "circuit breaker probe failed: open again")
}

func (r *runner) setOpen(b queue.Breaker, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := r.d.store.OpenBreaker(ctx, r.e.Name, b)
	cancel()
	r.forget(b.Until)
	r.d.opts.Logger.Warn(msg, zap.String("endpoint", r.e.Name), zap.String("reason", b.Reason),
		zap.Duration("cooldown", b.Cooldown), zap.Time("probe_at", b.Until), zap.Error(err))
	if o := r.d.opts.BreakerObserver; o != nil && err == nil {
		o.BreakerTransition(r.e.Name, queue.BreakerOpen)
	}
}

// close closes the breaker after a successful probe: the backlog drains, oldest first.
func (r *runner) close(now time.Time, probe, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n, err := r.d.store.CloseBreaker(ctx, r.e.Name, now.UTC(), probe)
	cancel()
	r.forget(time.Time{})
	r.d.opts.Logger.Info("circuit breaker closed: the backlog drains oldest first", zap.String("endpoint", r.e.Name),
		zap.String("reason", why), zap.Int("rescheduled", n), zap.Error(err))
	if o := r.d.opts.BreakerObserver; o != nil && err == nil {
		o.BreakerTransition(r.e.Name, queue.BreakerClosed)
	}
	r.d.Announce([]string{r.e.Name})
}

// forget drops what this runner counted towards the breaker and holds its leases back
// until gate (zero: not at all), after the breaker opened or closed.
func (r *runner) forget(gate time.Time) {
	r.brk.reset()
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
}

func (r *runner) status() (queue.EndpointStatus, error) {
	st, ok := r.d.store.(interface {
		Status(context.Context, string) (queue.EndpointStatus, error)
	})
	if !ok {
		return queue.EndpointStatus{}, errors.New("the store reports no status")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return st.Status(ctx, r.e.Name)
}

// SetBreaker opens (held by an operator: no probe until closed by hand) or closes the
// named endpoint's breaker, and returns how many pending deliveries a close rescheduled.
func (d *Dispatcher) SetBreaker(ctx context.Context, name string, open bool) (int, error) {
	if _, ok := d.reg.Get(name); !ok {
		return 0, errors.New("no such endpoint")
	}
	now := d.opts.Clock.Now().UTC()
	d.mu.Lock()
	r := d.runners[name]
	d.mu.Unlock()
	if open {
		err := d.store.OpenBreaker(ctx, name, queue.Breaker{Since: now, Manual: true, Reason: "opened by an operator"})
		if err == nil {
			d.opts.Logger.Warn("circuit breaker opened by an operator: no delivery is attempted until it is closed", zap.String("endpoint", name))
			if o := d.opts.BreakerObserver; o != nil {
				o.BreakerTransition(name, queue.BreakerOpen)
			}
		}
		return 0, err
	}
	n, err := d.store.CloseBreaker(ctx, name, now, "")
	if err != nil {
		return 0, err
	}
	if r != nil {
		r.forget(time.Time{})
	}
	d.opts.Logger.Info("circuit breaker closed by an operator", zap.String("endpoint", name), zap.Int("rescheduled", n))
	if o := d.opts.BreakerObserver; o != nil {
		o.BreakerTransition(name, queue.BreakerClosed)
	}
	d.Announce([]string{name})
	return n, nil
}

// BreakerConfig is a circuit breaker as written in config: the Caddyfile's `breaker`
// block, the JSON config and the subscriptions API. Durations are Go durations ("30s").
type BreakerConfig struct {
	// Off disables the breaker. Default false: the breaker is on.
	Off bool `json:"off,omitempty"`
	// Failures is how many consecutive failed attempts open it. Default 5.
	Failures int `json:"failures,omitempty"`
	// Ratio opens it when this share of the attempts over Window failed (0 < ratio ≤ 1;
	// 1 turns the ratio off). Default 0.5.
	Ratio float64 `json:"ratio,omitempty"`
	// Window is the ratio's window, at least 1s. Default "1m".
	Window string `json:"window,omitempty"`
	// MinAttempts is how many attempts the window needs before Ratio applies. Default 20.
	MinAttempts int `json:"min_attempts,omitempty"`
	// Cooldown is how long it stays open before a probe; doubled on each failed probe.
	// Default "30s".
	Cooldown string `json:"cooldown,omitempty"`
	// MaxCooldown caps the cooldown. Default "4m".
	MaxCooldown string `json:"max_cooldown,omitempty"`
}

// Policy turns the config into a validated BreakerPolicy (nil: the defaults).
func (c *BreakerConfig) Policy() (BreakerPolicy, error) {
	if c == nil {
		return BreakerPolicy{}, nil
	}
	if c.Off && (c.Failures != 0 || c.Ratio != 0 || c.Window != "" || c.MinAttempts != 0 || c.Cooldown != "" || c.MaxCooldown != "") {
		return BreakerPolicy{}, errors.New("breaker: off takes no other option")
	}
	p := BreakerPolicy{Off: c.Off, Failures: c.Failures, Ratio: c.Ratio, MinAttempts: c.MinAttempts}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"window", c.Window, &p.Window}, {"cooldown", c.Cooldown, &p.Cooldown}, {"max_cooldown", c.MaxCooldown, &p.MaxCooldown}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < MinBreakerDuration || v > MaxBreakerDuration {
			return p, fmt.Errorf("breaker: %s %q is not a duration between 1s and 24h (like 30s)", d.name, d.in)
		}
		*d.out = v
	}
	return p, p.Validate()
}

// ParseBreakerArgs reads a breaker from config words: "off", or option-value pairs
// (failures 5 ratio 0.5 window 1m min_attempts 20 cooldown 30s max_cooldown 4m).
func ParseBreakerArgs(words []string) (*BreakerConfig, error) {
	c := &BreakerConfig{}
	if len(words) == 1 && words[0] == "off" {
		c.Off = true
		return c, nil
	}
	if len(words)%2 != 0 {
		return nil, fmt.Errorf("breaker: %q needs a value (breaker off, or breaker { failures 5 … })", words[len(words)-1])
	}
	for i := 0; i < len(words); i += 2 {
		k, v := words[i], words[i+1]
		var err error
		switch k {
		case "failures":
			c.Failures, err = strconv.Atoi(v)
		case "min_attempts":
			c.MinAttempts, err = strconv.Atoi(v)
		case "ratio":
			c.Ratio, err = strconv.ParseFloat(v, 64)
		case "window":
			c.Window = v
		case "cooldown":
			c.Cooldown = v
		case "max_cooldown":
			c.MaxCooldown = v
		default:
			return nil, fmt.Errorf("breaker: unknown option %q (failures, ratio, window, min_attempts, cooldown, max_cooldown)", k)
		}
		if err != nil {
			return nil, fmt.Errorf("breaker: %s %q is not a number", k, v)
		}
	}
	if _, err := c.Policy(); err != nil {
		return nil, err
	}
	return c, nil
}
