package group_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/group"
)

// While a batch runs, the writers that arrive wait and go together into the next one (at
// most max per batch), each gets its own result, and a lone writer runs at once.
func TestWaitingWritersShareTheNextBatch(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var sizes []int
	g := group.New(4, func(calls []*group.Call[int]) {
		mu.Lock()
		sizes = append(sizes, len(calls))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			started <- struct{}{}
			<-release // hold the first batch until the others wait
		}
		for _, c := range calls {
			if c.Arg%2 == 1 {
				c.Done(errors.New("odd"))
			} else {
				c.Done(nil)
			}
		}
	})
	errs := make([]error, 11)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = g.Do(0) }()
	<-started
	for i := 1; i < len(errs); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.Do(i) }()
	}
	// Let the ten writers queue behind the held batch.
	deadline := time.Now().Add(10 * time.Second)
	for g.Waiting() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i%2 == 1) {
			t.Fatalf("call %d: err %v", i, err)
		}
	}
	if want := []int{1, 4, 4, 2}; !equal(sizes, want) {
		t.Fatalf("batch sizes %v, want %v", sizes, want)
	}
	if g.Batches() != 4 {
		t.Fatalf("Batches() = %d, want 4", g.Batches())
	}
	if err := g.Do(2); err != nil || g.Batches() != 5 {
		t.Fatalf("a lone writer afterwards: err %v, batches %d", err, g.Batches())
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
