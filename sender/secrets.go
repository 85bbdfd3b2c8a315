package sender

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// minSecret is the shortest value masked: shorter ones would mask ordinary words.
const minSecret = 4

// sentSecrets are the credentials e sends with every attempt: its header values (a Basic
// credential also decoded, and its password alone; a Bearer token alone), its URL's
// password and query values, and its signing secrets. An endpoint's answer may echo them
// (a debugging page that prints the request's headers): they are masked in whatever of an
// answer Hookgate keeps or shows. Longest first, so a value containing another is masked
// whole.
func (e *Endpoint) sentSecrets() []string {
	var out []string
	add := func(s string) {
		if len(s) >= minSecret {
			out = append(out, s)
		}
	}
	for _, vs := range e.Header {
		for _, v := range vs {
			add(v)
			scheme, cred, ok := strings.Cut(v, " ")
			if !ok {
				continue
			}
			add(cred)
			if strings.EqualFold(scheme, "Basic") {
				if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
					add(string(b))
					if _, pass, ok := strings.Cut(string(b), ":"); ok {
						add(pass)
					}
				}
			}
		}
	}
	if u, err := url.Parse(e.URL); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
				add(url.QueryEscape(v))
			}
		}
	}
	for _, s := range e.SigningSecrets {
		add(s)
		add(strings.TrimPrefix(s, "whsec_"))
	}
	for _, r := range e.RetiredSecrets {
		add(r.Secret)
		add(strings.TrimPrefix(r.Secret, "whsec_"))
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// maskSecrets replaces every credential e sends that text contains with "[redacted]".
func (e *Endpoint) maskSecrets(text string) string {
	for _, s := range e.secrets {
		if strings.Contains(text, s) {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return text
}
