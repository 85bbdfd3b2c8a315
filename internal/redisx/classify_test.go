package redisx

import (
	"context"
	"errors"
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
)

var errAway = errors.New("away")

// A node that is a replica when a write reaches it (a Cluster failover turned it) is the
// store being away for that call, not a refusal of the write: its WAIT and its writes are
// classified unavailable; a script error is not.
func TestClassifyReplicaErrors(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	rc := replica.Client(t)
	ctx := context.Background()
	for what, err := range map[string]error{
		"WAIT on a replica":   rc.Do(ctx, "wait", 1, 10).Err(),
		"a write on replica":  rc.Set(ctx, "k", "v", 0).Err(),
		"a script's write on": rc.Eval(ctx, "return redis.call('set', KEYS[1], 'x')", []string{"k"}).Err(),
	} {
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if got := Classify("op", err, errAway); !errors.Is(got, errAway) {
			t.Errorf("%s (%v): classified %v, want unavailable", what, err, got)
		}
	}
	_ = master.Client(t).Set(ctx, "s", "text", 0).Err()
	bad := master.Client(t).Eval(ctx, "return redis.call('incr', KEYS[1])", []string{"s"}).Err()
	if bad == nil || errors.Is(Classify("op", bad, errAway), errAway) {
		t.Errorf("a script's own error (%v) classified unavailable", bad)
	}
}
