package lifecycle

import (
	"context"
	"sync/atomic"
	"testing"
)

func TestStartedOnceStoppedOnce(t *testing.T) {
	var b Base
	if b.Running() || b.Go(func(context.Context) { t.Error("ran before Start") }) {
		t.Fatal("a service not started runs nothing")
	}
	if !b.Start() || b.Start() {
		t.Fatal("Start starts once")
	}
	if !b.Running() || b.Context() == nil {
		t.Fatal("started: running, with a context")
	}
	var drained, after int
	if !b.Stop(func() { drained++ }, func() { after++ }) || b.Stop(func() { drained++ }, func() { after++ }) {
		t.Fatal("Stop stops once")
	}
	if drained != 1 || after != 1 {
		t.Fatalf("drain ran %d times, after %d times", drained, after)
	}
	if b.Running() || b.Start() {
		t.Fatal("a stopped service is not started again")
	}
	if b.Go(func(context.Context) { t.Error("ran after Stop") }) {
		t.Fatal("Go after Stop runs nothing")
	}
}

// Stop waits for every goroutine, and the order is drain (context live), cancel, after.
func TestStopWaitsForGoroutines(t *testing.T) {
	var b Base
	b.Start()
	const n = 8
	var returned atomic.Int32
	started := make(chan struct{}, n)
	for range n {
		b.Go(func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			returned.Add(1)
		})
	}
	for range n {
		<-started
	}
	ctx := b.Context()
	var liveAtDrain, doneAtAfter bool
	b.Stop(func() { liveAtDrain = ctx.Err() == nil }, func() { doneAtAfter = ctx.Err() != nil })
	if got := returned.Load(); got != n {
		t.Fatalf("Stop returned with %d of %d goroutines returned", got, n)
	}
	if !liveAtDrain || !doneAtAfter {
		t.Fatalf("drain saw a live context: %v; after saw it cancelled: %v", liveAtDrain, doneAtAfter)
	}
}

// A goroutine that outlives cancellation (finishing an attempt) is waited for, however long.
func TestStopWaitsForSlowGoroutine(t *testing.T) {
	var b Base
	b.Start()
	release := make(chan struct{})
	var finished atomic.Bool
	b.Go(func(ctx context.Context) {
		<-ctx.Done()
		<-release
		finished.Store(true)
	})
	stopped := make(chan struct{})
	go func() { b.Stop(nil, func() { close(release) }); close(stopped) }()
	<-stopped
	if !finished.Load() {
		t.Fatal("Stop returned before the goroutine finished")
	}
}

func TestStopBeforeStart(t *testing.T) {
	var b Base
	if b.Stop(func() { t.Error("drain of a service never started") }, nil) {
		t.Fatal("stopping a service never started stops nothing")
	}
	if b.Start() {
		t.Fatal("a service stopped before it started is not started")
	}
}

// Cancel ends the goroutines early (from inside one of them, too); Stop still waits.
func TestCancelFromInside(t *testing.T) {
	var b Base
	b.Cancel() // before Start: nothing
	b.Start()
	ended := make(chan struct{})
	b.Go(func(ctx context.Context) {
		b.Cancel() // a task that found the service cannot go on
		<-ctx.Done()
		close(ended)
	})
	<-ended
	if !b.Running() {
		t.Fatal("Cancel does not stop the service: Stop does")
	}
	if !b.Stop(nil, nil) {
		t.Fatal("Stop after Cancel")
	}
}
