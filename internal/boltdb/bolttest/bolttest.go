// Package bolttest damages embedded store files for the stores' tests, as a disk or a
// stray `dd` would.
package bolttest

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
)

// OverwritePages writes seeded garbage over every page of the bbolt file at path but its
// two meta pages (so bbolt still opens it, and whatever reads a bucket meets garbage). It
// works on a file that is open: bbolt maps the file shared, so it sees the garbage.
func OverwritePages(t testing.TB, path string, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [28]byte // page header, then the meta's magic, version and page size
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	ps := int64(binary.NativeEndian.Uint32(hdr[24:]))
	if ps < 512 {
		t.Fatalf("%s: page size %d", path, ps)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= 2*ps {
		t.Fatalf("%s: %d bytes, nothing past the meta pages", path, fi.Size())
	}
	garbage := make([]byte, fi.Size()-2*ps)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(garbage, 2*ps); err != nil {
		t.Fatal(err)
	}
}
