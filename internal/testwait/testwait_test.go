package testwait

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	Until(t, 30*time.Second, func() bool { return n.Add(1) == 3 }, "the third poll")
	if got := n.Load(); got != 3 {
		t.Fatalf("cond was called %d times, want 3", got)
	}
}

func TestUntilNilReturnsOnceTheConditionIsNil(t *testing.T) {
	var n atomic.Int32
	UntilNil(t, 30*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	}, "the third poll")
	if got := n.Load(); got != 3 {
		t.Fatalf("cond was called %d times, want 3", got)
	}
}

func TestPollReportsATimeout(t *testing.T) {
	if Poll(0, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if !Poll(0, func() bool { return true }) {
		t.Fatal("Poll missed a condition that held at once")
	}
}
