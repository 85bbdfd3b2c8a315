// Package layout holds the test that keeps the repository's dependencies pointing down:
// the cores never import Caddy, and the outbound core nothing of the inbound one.
package layout

import (
	"os/exec"
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
	for _, p := range deps(t, "./receiver/...", "./sender/...", "./signature/...", "./problem/...", "./schemas/...") {
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
