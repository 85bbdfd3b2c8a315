package credential

import "testing"

func TestIsCredentialHeader(t *testing.T) {
	for _, h := range []string{"Authorization", "authorization", "X-API-KEY", "x-ploomes-validation-key", "Cookie", "proxy-authorization"} {
		if !IsCredentialHeader(h) {
			t.Errorf("%s is a credential header", h)
		}
	}
	for _, h := range []string{"Content-Type", "X-Signature", "Webhook-Signature", ""} {
		if IsCredentialHeader(h) {
			t.Errorf("%s is not a credential header", h)
		}
	}
}
