// Package testwait is the one way tests wait for an event: they poll the observable state
// until a condition holds, with a deadline generous enough for a loaded 2-core machine,
// instead of sleeping a fixed time and hoping the event has happened.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 10 * time.Millisecond

// Until polls cond every Interval until it returns true, and fails the test with msg
// when timeout passes first.
func Until(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, msg)
	}
}

// UntilNil polls cond every Interval until it returns nil, and fails the test with msg
// and cond's last error when timeout passes first.
func UntilNil(t testing.TB, timeout time.Duration, cond func() error, msg string) {
	t.Helper()
	var last error
	if !poll(timeout, func() bool { last = cond(); return last == nil }) {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, msg, last)
	}
}

// Poll reports whether cond returned true before timeout passed, polling every Interval;
// for callers that cannot fail a test from where they run (a goroutine).
func Poll(timeout time.Duration, cond func() bool) bool { return poll(timeout, cond) }

func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
}
