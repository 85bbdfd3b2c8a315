package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/redis/go-redis/v9"
)

const failoverCaddyfile = `{
	{GLOBAL}
	webhooks {
		store redis {URL} {
			cluster
			{ACK}
		}
	}
}
http://127.0.0.1:{PORT} {
	webhook_receive {
		name failover
		auth none
		event_id json:/id
		mode async
		deliver_to {SINK}/in {
			retry 100ms 200ms 500ms 1s 1s 1s 1s 1s 1s 1s
		}
	}
}
`

// TestFailoverLosesNothingAcknowledged: under async inbound load, the Cluster master that
// holds the route's queue is killed (kill -9); its replica is promoted, and the killed
// node comes back as a replica. Senders retry anything but a 2xx, as real ones do. With
// replicas_ack 1 every event answered 2xx is delivered. Without it the count of
// acknowledged events never delivered is logged (Redis replication is asynchronous, so it
// can be above 0; on loopback it is often 0).
func TestFailoverLosesNothingAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name, ack string
		mustKeep  bool
	}{{"replicas_ack 1", "replicas_ack 1", true}, {"no replicas_ack", "", false}} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			lost := failoverRun(t, tc.ack, tc.mustKeep)
			t.Logf("%s: acknowledged events lost: %d", tc.name, lost)
			if tc.mustKeep && lost != 0 {
				t.Fatalf("with %s, %d events answered 2xx were never delivered", tc.ack, lost)
			}
		})
	}
}

// failoverRun runs the load and the failover and returns how many acknowledged events
// were not delivered; it waits up to a minute for them when every one must arrive, and
// 15 s otherwise.
func failoverRun(t *testing.T, ack string, mustKeep bool) int {
	ctx := context.Background()
	cl := redistest.StartClusterWithReplicas(t)
	addrs := cl.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	sink := startBackend(t)
	c := startCaddy(t, strings.NewReplacer("{URL}", url, "{ACK}", ack, "{SINK}", sink.URL).Replace(failoverCaddyfile))

	var mu sync.Mutex
	acked := map[string]bool{}
	var stop atomic.Bool
	var sent atomic.Int64
	statuses := map[int]int{} // refusals by status (0: no answer), under mu
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(id string) {
		body := []byte(`{"id":"` + id + `","pad":"` + strings.Repeat("x", 900) + `"}`)
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
			resp, err := client.Post(c.Base(), "application/json", bytes.NewReader(body))
			code := 0
			if err == nil {
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			if code/100 == 2 {
				acked[id] = true
			} else {
				statuses[code]++
			}
			mu.Unlock()
			if code/100 == 2 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The first event tells which master holds the route's queue.
	post("first")
	victim := -1
	for i, n := range cl.Nodes {
		rc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		role, _ := rc.Do(ctx, "role").Slice()
		keys, _ := rc.Keys(ctx, "*q:inbound-failover*").Result()
		_ = rc.Close()
		if len(role) > 0 && role[0] == "master" && len(keys) > 0 {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatal("no master holds the route's queue")
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				sent.Add(1)
				post(fmt.Sprintf("g%d-%d", g, i))
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	cl.Nodes[victim].Stop() // SIGKILL
	killedAt := time.Now()
	// Wait for the promotion: a surviving node marks the killed one failed, and says the
	// cluster is ok again.
	survivor := cl.Nodes[(victim+1)%len(cl.Nodes)]
	testwait.UntilNil(t, 30*time.Second, func() error {
		nodes, _ := exec.Command("redis-cli", "-p", strconv.Itoa(survivor.Port), "cluster", "nodes").Output()
		failed := false
		for _, line := range strings.Split(string(nodes), "\n") {
			if strings.Contains(line, cl.Nodes[victim].Addr()) && strings.Contains(line, ",fail") && !strings.Contains(line, "fail?") {
				failed = true
			}
		}
		info, _ := exec.Command("redis-cli", "-p", strconv.Itoa(survivor.Port), "cluster", "info").Output()
		if !failed || !strings.Contains(string(info), "cluster_state:ok") {
			return fmt.Errorf("not failed over yet: %s", nodes)
		}
		return nil
	}, "the replica's promotion")
	promoted := time.Since(killedAt)
	time.Sleep(time.Second)
	cl.Nodes[victim].Restart() // it comes back as the new master's replica
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	delivered := map[string]bool{}
	wait := 15 * time.Second
	if mustKeep {
		wait = time.Minute
	}
	testwait.Poll(wait, func() bool {
		for _, r := range sink.Got() {
			var v struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(r.Body, &v)
			delivered[v.ID] = true
		}
		for id := range acked {
			if !delivered[id] {
				return false
			}
		}
		return true
	})
	lost := 0
	for id := range acked {
		if !delivered[id] {
			lost++
		}
	}
	t.Logf("sent %d events (%d answered 2xx; refusals retried, by status: %v); promotion after %s; %d deliveries received",
		sent.Load()+1, len(acked), statuses, promoted.Round(100*time.Millisecond), len(sink.Got()))
	if len(acked) < 50 {
		t.Fatalf("only %d events acknowledged: the load did not run", len(acked))
	}
	return lost
}
