package clock

import (
	"testing"
	"time"
)

func TestFakeFiresOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a, b := f.NewTimer(10*time.Minute), f.NewTimer(time.Hour)
	stopped := f.NewTimer(time.Minute)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop stops a pending timer once")
	}
	if f.Pending() != 2 {
		t.Fatalf("%d timers pending, want 2", f.Pending())
	}
	f.Advance(9 * time.Minute)
	select {
	case <-a.C():
		t.Fatal("fired before its time")
	default:
	}
	f.Advance(time.Minute)
	if got := <-a.C(); !got.Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("fired at %v", got)
	}
	if a.Stop() {
		t.Fatal("Stop of a fired timer reports it stopped it")
	}
	f.Advance(time.Hour)
	<-b.C()
	if f.Pending() != 0 || !f.Now().Equal(start.Add(70*time.Minute)) {
		t.Fatalf("pending %d, now %v", f.Pending(), f.Now())
	}
	if z := f.NewTimer(0); !(<-z.C()).Equal(f.Now()) {
		t.Fatal("a zero timer fires at once")
	}
}
