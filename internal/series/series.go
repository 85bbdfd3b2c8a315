// Package series keeps recent activity in memory for the operations console: counts and
// sampled values over the last 10 minutes in 10-second steps and over the last hour in
// 1-minute steps. Each is a ring of 60 slots updated with one compare-and-swap, so adding
// to a series on the hot path costs a few nanoseconds and takes no lock.
//
// Every slot holds its step number (Unix seconds / step) beside its value, so a slot that
// was not written since a full turn of the ring reads as empty, and nothing has to sweep
// old slots.
package series

import (
	"sync/atomic"
	"time"
)

// Slots is how many steps each ring holds.
const Slots = 60

// Windows: the two rings each series keeps.
const (
	// Short is the last 10 minutes, in 10-second steps.
	Short Window = 10
	// Long is the last hour, in 1-minute steps.
	Long Window = 60
)

// Window is a ring's step in seconds.
type Window int64

// Step is the window's step.
func (w Window) Step() time.Duration { return time.Duration(w) * time.Second }

// ring is Slots slots; a slot packs its step number (low 32 bits of it) in its high 32
// bits and its value in the low 32.
type ring struct {
	slots [Slots]atomic.Uint64
}

func (r *ring) update(step uint64, f func(old uint64, fresh bool) uint64) {
	s := &r.slots[step%Slots]
	tag := step & 0xffffffff
	for {
		v := s.Load()
		fresh := v>>32 != tag
		old := v & 0xffffffff
		if fresh {
			old = 0
		}
		nv := tag<<32 | f(old, fresh)&0xffffffff
		if s.CompareAndSwap(v, nv) {
			return
		}
	}
}

// read returns the Slots values ending at the step of now, oldest first; ok[i] is false
// for a slot not written in its step.
func (r *ring) read(step uint64) (vals [Slots]uint64, ok [Slots]bool) {
	for i := 0; i < Slots; i++ {
		st := step - uint64(Slots-1-i)
		v := r.slots[st%Slots].Load()
		if v>>32 == st&0xffffffff {
			vals[i], ok[i] = v&0xffffffff, true
		}
	}
	return vals, ok
}

// Counter counts events in both windows.
type Counter struct {
	short, long ring
}

// Add counts n events at now (Unix seconds).
func (c *Counter) Add(now int64, n uint32) {
	add := func(old uint64, _ bool) uint64 { return old + uint64(n) }
	c.short.update(uint64(now)/uint64(Short), add)
	c.long.update(uint64(now)/uint64(Long), add)
}

// Read returns the counts of the window ending at now, oldest first (0 where none).
func (c *Counter) Read(w Window, now int64) []uint64 {
	vals, _ := c.pick(w).read(uint64(now) / uint64(w))
	return vals[:]
}

func (c *Counter) pick(w Window) *ring {
	if w == Short {
		return &c.short
	}
	return &c.long
}

// Gauge keeps sampled values: a slot holds the largest sample of its step.
type Gauge struct {
	short, long ring
}

// Set records a sample v at now (Unix seconds); values are capped at 2^32-1.
func (g *Gauge) Set(now int64, v uint64) {
	v = min(v, 0xffffffff)
	set := func(old uint64, fresh bool) uint64 {
		if fresh || v > old {
			return v
		}
		return old
	}
	g.short.update(uint64(now)/uint64(Short), set)
	g.long.update(uint64(now)/uint64(Long), set)
}

// Read returns the samples of the window ending at now, oldest first; nil where no
// sample was taken.
func (g *Gauge) Read(w Window, now int64) []*uint64 {
	r := &g.long
	if w == Short {
		r = &g.short
	}
	vals, ok := r.read(uint64(now) / uint64(w))
	out := make([]*uint64, Slots)
	for i := range vals {
		if ok[i] {
			v := vals[i]
			out[i] = &v
		}
	}
	return out
}

// Start is the start of the window ending at now (the first slot's step), in Unix seconds.
func Start(w Window, now int64) int64 {
	return (now/int64(w) - (Slots - 1)) * int64(w)
}
