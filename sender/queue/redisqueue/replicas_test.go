package redisqueue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/redis/go-redis/v9"
)

// deliveryKey is where the queue keeps a delivery (redisqueue.go's key layout).
func deliveryKey(prefix, ep, eventID string) string {
	return prefix + "{" + prefix + "q:" + ep + "}:d:" + queue.DeliveryID(ep, eventID)
}

func TestReplicasAck(t *testing.T) {
	ctx := context.Background()
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	rc := replica.Client(t)
	s := redisqueue.New(master.Client(t), "hg:", redisqueue.Options{ReplicasAck: 1, ReplicasTimeout: 300 * time.Millisecond})
	for i := 0; i < 50; i++ {
		id := "evt_r" + strconv.Itoa(i)
		if n, err := s.Enqueue(ctx, queue.Event{ID: id, Type: "t", Body: []byte(`{}`)}, []string{"a", "b"}); err != nil || n != 2 {
			t.Fatalf("enqueue %d: %d %v", i, n, err)
		}
		// Read at once from the replica: the enqueue returned only once it held them.
		for _, ep := range []string{"a", "b"} {
			if n, err := rc.Exists(ctx, deliveryKey("hg:", ep, id)).Result(); err != nil || n != 1 {
				t.Fatalf("event %s for %s is not on the replica when Enqueue returns: %d %v", id, ep, n, err)
			}
		}
	}
	evs := []queue.Event{{ID: "evt_b1", Type: "t", Body: []byte(`{}`)}, {ID: "evt_b2", Type: "t", Body: []byte(`{}`)}}
	if n, err := s.EnqueueBatch(ctx, "feed", evs); err != nil || n != 2 {
		t.Fatalf("batch: %d %v", n, err)
	}
	if n, _ := rc.Exists(ctx, deliveryKey("hg:", "feed", "evt_b1"), deliveryKey("hg:", "feed", "evt_b2")).Result(); n != 2 {
		t.Fatalf("the batch is not on the replica when EnqueueBatch returns: %d of 2", n)
	}

	// Two replicas asked of one: refused as unavailable after the timeout.
	two := redisqueue.New(master.Client(t), "hg:", redisqueue.Options{ReplicasAck: 2, ReplicasTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := two.Enqueue(ctx, queue.Event{ID: "evt_two", Type: "t", Body: []byte(`{}`)}, []string{"a"})
	if !errors.Is(err, queue.ErrUnavailable) || !strings.Contains(err.Error(), "1 of the 2 replicas") {
		t.Fatalf("two replicas asked, one there: err = %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("the refusal took %s, want about the 200ms timeout", d)
	}
	if strings.Contains(err.Error(), "queue store unavailable: redis enqueue: queue store unavailable") {
		t.Fatalf("the error says it twice: %v", err)
	}
	// Its retry, once a second replica is there, is not queued twice.
	redistest.StartReplica(t, master)
	if n, err := two.Enqueue(ctx, queue.Event{ID: "evt_two", Type: "t", Body: []byte(`{}`)}, []string{"a"}); err != nil || n != 0 {
		t.Fatalf("the retry: created %d, %v (want 0: the master had it)", n, err)
	}

	// The replica gone: refused, not acknowledged.
	replica.Stop()
	if _, err := s.Enqueue(ctx, queue.Event{ID: "evt_gone", Type: "t", Body: []byte(`{}`)}, []string{"a"}); err != nil {
		t.Fatalf("one replica left of two: %v", err)
	}
}

func TestReplicasAckCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartClusterWithReplicas(t)
	cc := cl.Client(t)
	s := redisqueue.New(cc, "hg:", redisqueue.Options{ReplicasAck: 1})
	eps := make([]string, 10) // ten endpoints: their hash tags fall on every master
	for i := range eps {
		eps[i] = "ep" + strconv.Itoa(i)
	}
	replicaOf := map[string]*redis.Client{} // master address -> a READONLY client of its replica
	for _, n := range cl.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr(), PoolSize: 1})
		t.Cleanup(func() { _ = c.Close() })
		info, _ := c.Info(ctx, "replication").Result()
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "master_port:"); ok {
				if err := c.Do(ctx, "readonly").Err(); err != nil {
					t.Fatal(err)
				}
				replicaOf["127.0.0.1:"+v] = c
			}
		}
	}
	if len(replicaOf) != 3 {
		t.Fatalf("%d masters with a replica, want 3", len(replicaOf))
	}
	for i := 0; i < 20; i++ {
		id := "evt_c" + strconv.Itoa(i)
		if n, err := s.Enqueue(ctx, queue.Event{ID: id, Type: "t", Body: []byte(`{}`)}, eps); err != nil || n != len(eps) {
			t.Fatalf("enqueue %s: %d %v", id, n, err)
		}
		for _, ep := range eps {
			key := deliveryKey("hg:", ep, id)
			m, err := cc.MasterForKey(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := replicaOf[m.Options().Addr].Exists(ctx, key).Result(); err != nil || n != 1 {
				t.Fatalf("%s for %s is not on its master's replica when Enqueue returns: %d %v", id, ep, n, err)
			}
		}
	}
	// Each master was asked to WAIT on its own writes' connection (a keyless WAIT through
	// the cluster client would have gone to any node).
	for addr := range replicaOf {
		c := redis.NewClient(&redis.Options{Addr: addr})
		stats, _ := c.Info(ctx, "commandstats").Result()
		_ = c.Close()
		if !strings.Contains(stats, "cmdstat_wait:calls=") {
			t.Errorf("master %s never ran WAIT:\n%s", addr, stats)
		}
	}
}
