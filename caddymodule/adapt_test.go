package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// TestAdapt adapts every testdata/adapt/*.caddyfiletest (a Caddyfile, a line of dashes,
// then the expected JSON or the expected error text) and compares. An expected error may
// come from the Caddyfile parser or from judging the adapted JSON as `caddy validate`
// does (Provision and Validate of every module), since most checks live in Validate so
// that a JSON config is judged as a Caddyfile is. UPDATE_GOLDEN=1 rewrites the expected
// JSON.
func TestAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.SplitN(string(raw), "----------", 2)
			if len(parts) != 2 {
				t.Fatalf("%s: no ---------- separator", f)
			}
			in, want := parts[0], strings.TrimSpace(parts[1])
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
			if want != "" && !strings.HasPrefix(want, "{") {
				if err == nil {
					err = validateJSON(t, out)
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("want an error containing %q, got %v", want, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, out, "", "\t")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				_ = os.WriteFile(f, []byte(in+"----------\n"+pretty.String()+"\n"), 0o644)
				return
			}
			if norm(pretty.String()) != norm(want) {
				t.Fatalf("adapted JSON differs.\ngot:\n%s\nwant:\n%s", pretty.String(), want)
			}
		})
	}
}

// validateJSON judges a JSON config as `caddy validate` does, with Caddy's data
// directory in a temporary one.
func validateJSON(t *testing.T, cfg []byte) error {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		return err
	}
	return caddy.Validate(&c)
}

// TestValidateJSON judges every testdata/validate/*.json (a JSON config whose first
// member "_want" is the expected error text, or "" for a valid one) as `caddy validate`
// does: the limits a Caddyfile's parser would have refused are refused in JSON too.
func TestValidateJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/validate/*.json")
	if len(files) == 0 {
		t.Fatal("no validate cases")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Want string `json:"_want"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			err = validateJSON(t, raw)
			switch {
			case head.Want == "" && err != nil:
				t.Fatalf("want a valid config, got %v", err)
			case head.Want != "" && (err == nil || !strings.Contains(err.Error(), head.Want)):
				t.Fatalf("want an error containing %q, got %v", head.Want, err)
			}
		})
	}
}

var space = regexp.MustCompile(`\s+`)

func norm(s string) string { return space.ReplaceAllString(s, "") }

// TestXcaddyManifestMatchesGoMod keeps the build manifest's Caddy version in step with go.mod.
func TestXcaddyManifestMatchesGoMod(t *testing.T) {
	raw, err := os.ReadFile("../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			ModulePath string `json:"module_path"`
		} `json:"plugins"`
		Replacements []struct{ Old, New string } `json:"replacements"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*github\.com/caddyserver/caddy/v2 (v\S+)`)
	got := re.FindSubmatch(mod)
	if got == nil {
		t.Fatal("go.mod does not require caddy")
	}
	if string(got[1]) != m.CaddyVersion {
		t.Fatalf("xcaddy.json says %s, go.mod requires %s", m.CaddyVersion, got[1])
	}
	if len(m.Plugins) != 1 || m.Plugins[0].ModulePath != "github.com/hookgate/hookgate" ||
		len(m.Replacements) != 1 || m.Replacements[0].New != "." {
		t.Fatalf("manifest plugin/replacement: %+v", m)
	}
}
