// Package layout holds the test that keeps the repository's dependencies pointing down:
// the cores and the gateway never import Caddy, the outbound core nothing of the inbound
// one, the leaves nothing of the cores, and the Caddy glue no store implementation.
package layout

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deps lists the packages (with their dependencies) that pkgs build from.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

func TestDependenciesPointDown(t *testing.T) {
	for _, p := range deps(t, "./gateway/...", "./receiver/...", "./sender/...", "./signature/...", "./problem/...", "./schemas/...", "./internal/...") {
		if strings.HasPrefix(p, "github.com/caddyserver/") {
			t.Errorf("a core package depends on Caddy: %s", p)
		}
	}
	for _, p := range deps(t, "./sender/...") {
		if strings.HasPrefix(p, "github.com/hookgate/hookgate/receiver") {
			t.Errorf("sender depends on the inbound core: %s", p)
		}
	}
	for _, p := range deps(t, "./receiver/...") {
		if strings.HasPrefix(p, "github.com/hookgate/hookgate/sender") {
			t.Errorf("receiver depends on the outbound core: %s", p)
		}
	}
}

// The leaves (signature, problem, schemas, internal/…) are what the cores build on; they
// import none of the cores and not the gateway.
func TestLeavesImportNoCore(t *testing.T) {
	for _, p := range deps(t, "./signature/...", "./problem/...", "./schemas/...", "./internal/...") {
		for _, core := range []string{"receiver", "sender", "gateway", "caddymodule"} {
			if strings.HasPrefix(p, "github.com/hookgate/hookgate/"+core) {
				t.Errorf("a leaf depends on %s: %s", core, p)
			}
		}
	}
}

// The Caddy glue only translates config: it names no store implementation (the gateway
// composes them) and stays small.
func TestGlueStaysGlue(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "./caddymodule")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		for _, store := range []string{"boltstore", "redisstore", "boltqueue", "redisqueue", "boltorder", "redisorder",
			"boltsubs", "redissubs", "receiver/reqlog", "internal/boltdb"} {
			if strings.HasSuffix(imp, "/"+store) {
				t.Errorf("caddymodule imports the store package %s", imp)
			}
		}
	}
	files, _ := filepath.Glob("../../caddymodule/*.go")
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			lines++
		}
		fh.Close()
	}
	if lines == 0 || lines >= 2000 {
		t.Errorf("caddymodule has %d non-test lines; the glue stays under 2,000 (move logic to gateway/)", lines)
	}
}
