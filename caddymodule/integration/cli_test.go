package integration

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// cli runs `caddy webhook …` and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(caddyBin, append([]string{"webhook"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

const cliCaddyfile = `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /ploomes {
		webhook_receive ploomes {
			validation_key pl-123
		}
		respond 200
	}
	handle /totvs {
		webhook_receive totvs_crm {
			auth header X-Api-Key tk-456
		}
		respond 200
	}
	handle /totvs-workflow {
		webhook_receive totvs_crm {
			name totvs-workflow
			auth header Authorization tk-789
		}
		respond 200
	}
	handle /github {
		webhook_receive github {
			auth hmac github gh-secret
		}
		respond 200
	}
	handle /rubeus {
		webhook_receive rubeus {
			auth query key rb-1
		}
		respond 200
	}
	handle /standard {
		webhook_receive standard {
			auth hmac standard whsec_c3RhbmRhcmQtY2xpLWtleQ==
		}
		respond 200
	}
}
`

func TestCommandLine(t *testing.T) {
	out, _, code := cli(t, "schemas")
	for _, name := range []string{"ploomes", "totvs_crm", "sintegre", "rubeus", "rubeus_servicos_contato", "rubeus_servicos_evento"} {
		if !strings.Contains(out, name) {
			t.Errorf("schemas lacks %s:\n%s", name, out)
		}
	}
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 5 {
		t.Fatalf("schemas: exit %d\n%s", code, out)
	}

	c := startCaddy(t, cliCaddyfile)
	good := "../../examples/samples/totvs_crm/opportunity-won.json"
	out, _, code = cli(t, "validate", "--schema", "totvs_crm", good)
	if code != 0 || !strings.HasPrefix(out, "valid") {
		t.Fatalf("validate good: %d %s", code, out)
	}
	// A wrong payload: the command prints exactly the problem the gateway answers.
	bad := writeTemp(t, `{"eventId": 5, "timestamp": "yesterday"}`)
	out, _, code = cli(t, "validate", "--schema", "totvs_crm", bad)
	status, _, body := send(t, c.Base()+"/totvs", []byte(`{"eventId": 5, "timestamp": "yesterday"}`), "X-Api-Key", "tk-456")
	var fromCLI, fromGateway any
	if err := json.Unmarshal([]byte(out), &fromCLI); err != nil {
		t.Fatalf("validate output is not the problem JSON: %v\n%s", err, out)
	}
	_ = json.Unmarshal(body, &fromGateway)
	if code != 1 || status != 422 || !jsonEqual(fromCLI, fromGateway) {
		t.Fatalf("validate bad: exit %d\ncli: %s\ngateway (%d): %s", code, out, status, body)
	}
	// Rubeus Serviços: both official "JSON de Envio" examples are valid Serviços records.
	for schema, file := range map[string]string{"rubeus_servicos_contato": "contato-envio.json", "rubeus_servicos_evento": "evento-envio.json"} {
		if out, _, code := cli(t, "validate", "--schema", schema, "../../examples/samples/rubeus_servicos/"+file); code != 0 {
			t.Errorf("validate --schema %s on Rubeus' example: %d\n%s", schema, code, out)
		}
	}
	out, _, code = cli(t, "validate", "--schema", "totvs_crm", writeTemp(t, `{"eventId": `))
	if code != 1 || !strings.Contains(out, `"offset"`) {
		t.Fatalf("validate broken JSON: %d %s", code, out)
	}

	// sign: the headers verify at the gateway.
	payload := writeTemp(t, `{"action":"opened","number":7}`)
	out, _, code = cli(t, "sign", "--scheme", "github", "--secret", "gh-secret", payload)
	name, value, ok := strings.Cut(strings.TrimSpace(out), ": ")
	if code != 0 || !ok || name != "X-Hub-Signature-256" {
		t.Fatalf("sign: %d %s", code, out)
	}
	if st, _, b := send(t, c.Base()+"/github", []byte(`{"action":"opened","number":7}`), name, value, "X-GitHub-Delivery", "d-1"); st != 200 {
		t.Fatalf("signed by the CLI, the gateway answered %d %s", st, b)
	}

	// send: as the sender would, in order (the second Ploomes send is a duplicate).
	ploomes := "../../examples/samples/ploomes/contact-update.json"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"ploomes", []string{"--url", c.Base() + "/ploomes", "--preset", "ploomes", "--secret", "pl-123", ploomes}, 0, []string{"200 OK"}},
		{"ploomes again", []string{"--url", c.Base() + "/ploomes", "--preset", "ploomes", "--secret", "pl-123", ploomes}, 0, []string{"Webhook-Duplicate: true"}},
		{"a wrong key", []string{"--url", c.Base() + "/ploomes", "--preset", "ploomes", "--secret", "wrong", ploomes}, 1, []string{"401"}},
		{"totvs", []string{"--url", c.Base() + "/totvs", "--header", "X-Api-Key", "--secret", "tk-456", good}, 0, []string{"200 OK"}},
		// Every preset sends its credential as its sender does; the ones whose event id is a
		// delivery header get a fresh one unless -H gives it.
		{"totvs_crm", []string{"--url", c.Base() + "/totvs-workflow", "--preset", "totvs_crm", "--secret", "tk-789", good}, 0, []string{"200 OK"}},
		{"rubeus", []string{"--url", c.Base() + "/rubeus", "--preset", "rubeus", "--secret", "rb-1", "../../examples/samples/rubeus/contato.json"}, 0, []string{"200 OK"}},
		{"github", []string{"--url", c.Base() + "/github", "--preset", "github", "--secret", "gh-secret", payload}, 0, []string{"200 OK"}},
		{"github, new delivery", []string{"--url", c.Base() + "/github", "--preset", "github", "--secret", "gh-secret", payload}, 0, []string{"200 OK"}},
		{"github with a delivery id", []string{"--url", c.Base() + "/github", "--preset", "github", "--secret", "gh-secret", "-H", "X-GitHub-Delivery: d-2", payload}, 0, []string{"200 OK"}},
		{"github, that id again", []string{"--url", c.Base() + "/github", "--preset", "github", "--secret", "gh-secret", "-H", "X-GitHub-Delivery: d-2", payload}, 0, []string{"Webhook-Duplicate: true"}},
		{"standard", []string{"--url", c.Base() + "/standard", "--preset", "standard", "--secret", "whsec_c3RhbmRhcmQtY2xpLWtleQ==", payload}, 0, []string{"200 OK"}},
	} {
		out, _, code := cli(t, append([]string{"send"}, tc.args...)...)
		if code != tc.code {
			t.Fatalf("send %s: exit %d, want %d\n%s", tc.name, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("send %s: output lacks %q\n%s", tc.name, w, out)
			}
		}
	}
	if _, errOut, code := cli(t, "send", "--url", "ftp://x", ploomes); code == 0 || !strings.Contains(errOut, "http or https") {
		t.Fatalf("send with a bad url: %d %s", code, errOut)
	}
	// Help and behaviour agree: every preset --help lists is accepted with --secret.
	help, _, _ := cli(t, "send", "--help")
	for _, p := range []string{"ploomes", "totvs_crm", "sintegre", "rubeus", "standard", "github", "stripe", "shopify", "slack"} {
		if !strings.Contains(help, "--preset "+p) {
			t.Errorf("send --help does not list --preset %s", p)
		}
		secret := "x"
		if p == "standard" {
			secret = "whsec_c3RhbmRhcmQtY2xpLWtleQ=="
		}
		if _, errOut, _ := cli(t, "send", "--url", "http://127.0.0.1:1/", "--preset", p, "--secret", secret, ploomes); !strings.Contains(errOut, "sending:") {
			t.Errorf("send --preset %s --secret x is refused before sending: %s", p, errOut)
		}
	}
	// sign --scheme generic without --header names the CLI flag.
	if _, errOut, code := cli(t, "sign", "--scheme", "generic", "--secret", "s", payload); code == 0 || !strings.Contains(errOut, "--header") {
		t.Fatalf("sign generic without --header: %d %s", code, errOut)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
