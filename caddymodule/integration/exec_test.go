package integration

import (
	"os"
	"os/exec"
	"path/filepath"
)

// runCmd runs a command with a private data directory and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	dir, err := os.MkdirTemp("", "hookgate-exec")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
