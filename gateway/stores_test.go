package gateway

import (
	"strings"
	"testing"
)

// A Redis URL in an error or a log shows no secret: not the userinfo password, nor one
// given as a query option (outside review: ?password= was shown in the /load error).
func TestRedisURLRedacted(t *testing.T) {
	for _, raw := range []string{
		"redis://default:SuperRedisPw@127.0.0.1:6379/0",
		"redis://127.0.0.1:6379/0?password=SuperRedisPw",
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001&password=SuperRedisPw",
	} {
		got := redactURL(raw)
		if strings.Contains(got, "SuperRedisPw") || !strings.Contains(got, "127.0.0.1") {
			t.Errorf("%s shown as %s", raw, got)
		}
		_, _, err := (RedisConfig{URL: raw + "&bogus=1"}).options()
		if err != nil && strings.Contains(err.Error(), "SuperRedisPw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if got := redactURL("redis://127.0.0.1:7000?addr=127.0.0.1:7001"); !strings.Contains(got, "7001") {
		t.Errorf("the extra nodes are hidden: %s", got)
	}
}

// An unparsable URL's error does not quote it (outside review: the parser's own error,
// wrapped, showed `parse "redis://:S3cr3t%zzPW@…": invalid URL escape`).
func TestUnparsableRedisURLHidesItsPassword(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		_, _, err := (RedisConfig{URL: "redis://:S3cr3t%zzPW@127.0.0.1:26101/0", Cluster: cluster}).options()
		if err == nil || strings.Contains(err.Error(), "S3cr3t") {
			t.Errorf("cluster %v: %v", cluster, err)
		}
	}
}
