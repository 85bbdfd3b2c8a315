package schemas

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// BenchmarkValidate is each embedded schema's cost on each of its senders' samples, as it
// is ("now") and as it was before the rewrite for v5's cost ("before", testdata/before):
//
//	go test ./schemas -run '^$' -bench Validate -benchmem
func BenchmarkValidate(b *testing.B) {
	names := Names()
	sort.Strings(names)
	for _, name := range names {
		before, now := compileBoth(b, name)
		files, _ := filepath.Glob(filepath.Join("..", "examples", "samples", senders[name], "*.json"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			doc, _ := decode(b, raw)
			sample := strings.TrimSuffix(filepath.Base(f), ".json")
			for _, v := range []struct {
				label string
				s     interface{ Validate(any) error }
			}{{"before", before}, {"now", now}} {
				b.Run(name+"/"+sample+"/"+v.label, func(b *testing.B) {
					b.ReportAllocs()
					for i := 0; i < b.N; i++ {
						_ = v.s.Validate(doc)
					}
				})
			}
		}
	}
}
