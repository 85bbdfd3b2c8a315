package series

import (
	"sync"
	"testing"
)

func TestCounterWindows(t *testing.T) {
	var c Counter
	t0 := int64(1_796_000_000) // a multiple of 10
	c.Add(t0, 1)
	c.Add(t0+1, 2)
	c.Add(t0+15, 4) // the next 10-second step (or a later one)
	short := c.Read(Short, t0+15)
	if short[Slots-1]+short[Slots-2] != 7 || sum(short) != 7 {
		t.Fatalf("short = %v", short[Slots-3:])
	}
	if sum(c.Read(Long, t0+15)) != 7 {
		t.Fatalf("long = %v", c.Read(Long, t0+15)[Slots-2:])
	}
	// Ten minutes later the short ring has turned: nothing left in it; the hour keeps all.
	if s := sum(c.Read(Short, t0+15+600)); s != 0 {
		t.Fatalf("short after 10 min = %d", s)
	}
	if s := sum(c.Read(Long, t0+15+600)); s != 7 {
		t.Fatalf("long after 10 min = %d", s)
	}
	// A slot reused a turn later starts from zero, not from the old count.
	c.Add(t0+600, 1) // the slot of t0's step, a turn later
	if s := c.Read(Short, t0+600)[Slots-1]; s != 1 {
		t.Fatalf("reused slot = %d", s)
	}
	if s := sum(c.Read(Long, t0+3600+660)); s != 0 {
		t.Fatalf("long after an hour = %d", s)
	}
}

func TestGaugeKeepsTheLargestSampleOfAStep(t *testing.T) {
	var g Gauge
	t0 := int64(1_796_000_000)
	g.Set(t0, 5)
	g.Set(t0, 3)
	vals := g.Read(Short, t0)
	if vals[Slots-1] == nil || *vals[Slots-1] != 5 || vals[Slots-2] != nil {
		t.Fatalf("gauge = %v %v", vals[Slots-2], vals[Slots-1])
	}
	g.Set(t0+10, 2)
	if v := g.Read(Short, t0+10)[Slots-1]; v == nil || *v != 2 {
		t.Fatalf("next step = %v", v)
	}
	if v := g.Read(Long, t0+10)[Slots-1]; (t0/60 == (t0+10)/60) && (v == nil || *v != 5) {
		t.Fatalf("long keeps the minute's largest: %v", v)
	}
}

func TestConcurrentAddsAreAllCounted(t *testing.T) {
	var c Counter
	now := int64(1_796_000_005)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10000; j++ {
				c.Add(now, 1)
			}
		}()
	}
	wg.Wait()
	if s := sum(c.Read(Short, now)); s != 80000 {
		t.Fatalf("counted %d of 80000", s)
	}
}

func TestStart(t *testing.T) {
	if got := Start(Long, 3600*10+59); got != 3600*10+59-59-59*60 {
		t.Fatalf("Start = %d", got)
	}
}

func BenchmarkCounterAdd(b *testing.B) {
	var c Counter
	now := int64(1_796_000_000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Add(now, 1)
	}
}

func sum(v []uint64) (s uint64) {
	for _, x := range v {
		s += x
	}
	return s
}
