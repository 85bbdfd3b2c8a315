package sender

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
)

// contatoRecord is a Rubeus Serviços Contato record of about 1 KB.
func contatoRecord(i int) []byte {
	return fmt.Appendf(nil, `{"codigo":"%d","nome":"Contato %d da Silva","emailPrincipal":"contato%d@example.com.br","telefonePrincipal":"55(31)26582323","cep":"33840-610","endereco":"Rua das Acácias","numero":"%d","bairro":"Centro","cidade":"Ribeirão das Neves","uf":"MG","aluno":"1","cpf":"123.456.789-09","dataNascimento":"1990-05-17","camposPersonalizados":{"campanhaOrigem":"Facebook","observacoes":"%s"}}`,
		i, i, i, i%1000, strings.Repeat("x", 600))
}

// BenchmarkFeedPublish1000 publishes 1,000 Contato records per op into a feed whose store
// already holds 20,000 (issue 20, item 18: goal ≤ 100 ms embedded, ≤ 200 ms on Redis).
func BenchmarkFeedPublish1000(b *testing.B) {
	stores := map[string]func(b *testing.B) queue.Store{
		"embedded": func(b *testing.B) queue.Store { return newBenchQueue(b) },
		"redis": func(b *testing.B) queue.Store {
			srv := redistest.Start(b)
			return redisqueue.New(srv.Client(b), "bench:", redisqueue.Options{})
		},
	}
	for _, name := range []string{"embedded", "redis"} {
		b.Run(name, func(b *testing.B) {
			s := New(stores[name](b), Options{StopGrace: time.Second})
			f, err := s.AddFeed("contatos", FeedOptions{})
			if err != nil {
				b.Fatal(err)
			}
			batch := func(from int) [][]byte {
				recs := make([][]byte, 1000)
				for i := range recs {
					recs[i] = contatoRecord(from + i)
				}
				return recs
			}
			ctx := context.Background()
			for k := range 20 { // a store that has grown
				if _, err := f.Publish(ctx, "", batch(k*1000)); err != nil {
					b.Fatal(err)
				}
			}
			recs := batch(0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.Publish(ctx, "", recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/publish")
		})
	}
}

func newBenchQueue(b *testing.B) queue.Store {
	h := boltdb.New(filepath.Join(b.TempDir(), "q.db"))
	b.Cleanup(func() { _ = h.Close() })
	return boltqueue.New(h, boltqueue.Options{})
}
