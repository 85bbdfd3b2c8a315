// Package redistest starts real redis-server processes on free loopback ports for tests.
//
// When redis-server is not installed a test is skipped, unless the CI environment variable
// is set: in CI a missing Redis fails the test, since a skipped integration test proves
// nothing.
package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// Addr returns host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL returns a redis:// URL for the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Binary returns the redis-server path, skipping (or failing in CI) when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed, and CI is set: install it (apt-get install redis-server)")
		}
		t.Skip("redis-server not installed; skipping (set CI=1 to make this a failure)")
	}
	return p
}

// FreePort returns a loopback port that was free a moment ago.
//
// Ports come from 20000-31999, below Linux's ephemeral range (32768-60999): a port from
// the ephemeral range can be taken by any outgoing connection's local end while a server
// that was killed is being restarted on it. A port is never handed out twice by one
// process.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 1000; i++ {
		p := 20000 + rand.IntN(12000)
		if portsUsed[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[p] = true
		return p
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

// clusterBusOffset is where Redis Cluster puts a node's bus port: its port + 10000.
const clusterBusOffset = 10000

// freeClusterPort returns a port p for a cluster node such that p and its bus port
// p+10000 were both free a moment ago and both lie below the ephemeral range (so no
// outgoing connection takes the bus port), and reserves both.
func freeClusterPort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	free := func(p int) bool {
		if portsUsed[p] {
			return false
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for i := 0; i < 1000; i++ {
		p := 20000 + rand.IntN(32768-clusterBusOffset-20000)
		if free(p) && free(p+clusterBusOffset) {
			portsUsed[p], portsUsed[p+clusterBusOffset] = true, true
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// Start starts a redis-server with no persistence on a free port; it is stopped when the
// test ends. Extra arguments are passed to redis-server.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startOn(t, FreePort(t), extra...)
}

func startOn(t testing.TB, port int, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, Port: port, dir: t.TempDir(), args: extra}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	bin := Binary(s.t)
	args := append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"),
	}, s.args...)
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redis-server on %s did not come up:\n%s", s.Addr(), log)
}

// Stop kills the server (data is lost: it has no persistence).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Cluster is a Redis Cluster of three masters (and, from StartClusterWithReplicas, a
// replica of each).
type Cluster struct {
	Nodes []*Server
}

// StartReplica starts a redis-server that replicates master and returns once its link to
// master is up.
func StartReplica(t testing.TB, master *Server) *Server {
	t.Helper()
	r := Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	r.waitLinked()
	return r
}

// waitLinked waits until the replica s reports its link to its master up.
func (s *Server) waitLinked() {
	s.t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		s.t.Fatalf("redis-cli not found: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command(cli, "-p", strconv.Itoa(s.Port), "info", "replication").Output()
		if strings.Contains(string(out), "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("replica %s did not link to its master: %s", s.Addr(), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartCluster starts three cluster-enabled redis-servers and joins them into a cluster
// with redis-cli --cluster create.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, 0)
}

// StartClusterWithReplicas starts three masters and a replica of each (Nodes holds all
// six; which are masters is the cluster's to say) and returns once every replica is linked.
func StartClusterWithReplicas(t testing.TB) *Cluster {
	t.Helper()
	return startCluster(t, 1)
}

func startCluster(t testing.TB, replicas int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := 0; i < 3*(1+replicas); i++ {
		dir := t.TempDir()
		c.Nodes = append(c.Nodes, startOn(t, freeClusterPort(t), "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000"))
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found: %v", err)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node reports the cluster ok.
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range c.Nodes {
		for {
			out, _ := exec.Command(cli, "-p", strconv.Itoa(n.Port), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster did not become ok: %s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if replicas > 0 {
		for _, n := range c.Nodes {
			out, _ := exec.Command(cli, "-p", strconv.Itoa(n.Port), "info", "replication").Output()
			if strings.Contains(string(out), "role:slave") {
				n.waitLinked()
			}
		}
	}
	return c
}

// String describes the server.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr()) }
