package signature

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Message is what a sender signs: its id (Standard Webhooks only), time and raw body.
type Message struct {
	ID   string
	Time time.Time
	Body []byte
}

// Sign returns the headers a sender using scheme would put on msg, signed with every
// secret in cfg (Standard Webhooks and Stripe carry one signature per secret; the other
// schemes carry the first secret's). It is the inverse of Verify.
func Sign(cfg Config, msg Message) (http.Header, error) {
	v, err := NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	return v.Sign(msg)
}

// Sign returns the headers a sender using v's scheme and secrets would put on msg (see
// the package-level Sign); the secrets were decoded once by NewVerifier.
func (v *Verifier) Sign(msg Message) (http.Header, error) {
	h := http.Header{}
	ts := strconv.FormatInt(msg.Time.Unix(), 10)
	switch v.scheme {
	case Standard:
		if msg.ID == "" {
			return nil, fmt.Errorf("standard: a message id is required")
		}
		h.Set("Webhook-Id", msg.ID)
		h.Set("Webhook-Timestamp", ts)
		sigs := ""
		for i, k := range v.keys {
			if i > 0 {
				sigs += " "
			}
			sigs += "v1," + base64.StdEncoding.EncodeToString(v.mac(k, []byte(msg.ID), dot, []byte(ts), dot, msg.Body))
		}
		h.Set("Webhook-Signature", sigs)
	case GitHub:
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(v.mac(v.keys[0], msg.Body)))
	case Stripe:
		s := "t=" + ts
		for _, k := range v.keys {
			s += ",v1=" + hex.EncodeToString(v.mac(k, []byte(ts), dot, msg.Body))
		}
		h.Set("Stripe-Signature", s)
	case Shopify:
		h.Set("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(v.mac(v.keys[0], msg.Body)))
	case Slack:
		h.Set("X-Slack-Request-Timestamp", ts)
		h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(v.mac(v.keys[0], []byte("v0:"+ts+":"), msg.Body)))
	default:
		alg := "sha256"
		if v.newHash().Size() == 64 {
			alg = "sha512"
		}
		h.Set(v.header, alg+"="+hex.EncodeToString(v.mac(v.keys[0], msg.Body)))
	}
	return h, nil
}
