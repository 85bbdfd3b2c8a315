package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

func itoa(i int) string { return strconv.Itoa(i) }

func writeTemp(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsonOnly keeps the JSON document of `caddy adapt` output (it may print warnings too).
func jsonOnly(out string) []byte {
	i := strings.Index(out, "{\"")
	j := strings.LastIndex(out, "}")
	if i < 0 || j < i {
		return []byte(out)
	}
	// Warnings are JSON log lines too: take the line that holds "apps".
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"apps"`) {
			return []byte(line)
		}
	}
	return []byte(out[i : j+1])
}

func postJSON(url string, body []byte) (int, error) {
	if strings.HasSuffix(url, "/load") {
		defer lastReload.Store(time.Now().UnixNano())
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, nil
}

// getJSON GETs url and decodes its JSON answer into v; it fails the test on a non-200.
func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

// adminPost POSTs to an admin route and returns the status and decoded JSON answer.
func adminPost(t testing.TB, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	if err != nil && errors.Is(err, io.EOF) && time.Since(time.Unix(0, lastReload.Load())) < 2*time.Second {
		// The admin endpoint restarts on a reload too: the same race as send's.
		t.Logf("%s: %v within 2 s of a reload; retrying once", url, err)
		resp, err = http.Post(url, "application/json", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}
