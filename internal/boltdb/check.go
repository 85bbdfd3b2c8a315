package boltdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk layout (go.etcd.io/bbolt, internal/common): every page starts with a
// 16-byte header; pages 0 and 1 hold a meta record each, in the machine's byte order.
const (
	pageHeaderSize = 16
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	metaSumOffset  = 56 // bytes of the meta record covered by its checksum
	metaSize       = 64
	noFreelist     = 0xffffffffffffffff
)

// meta is the part of a bbolt meta page that says how much of the file is in use.
type meta struct {
	pageSize       uint32
	root, freelist uint64
	highWater      uint64 // the first page id past the end of the data
	txid           uint64
}

// ErrDamaged is the class of errors checkFile returns.
var ErrDamaged = errors.New("embedded store file is damaged")

// checkFile looks at a store file before bbolt maps it. bbolt trusts the meta page it
// picks: a file cut short (a full disk, a bad copy) has a high-water mark past its end, and
// reading the freelist there kills the process with SIGSEGV or SIGBUS, which Go cannot
// recover. So: the newest meta page whose checksum holds must fit in the file. A missing or
// empty file is fine (bbolt creates it).
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening store file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store file %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	var best *meta
	for _, m := range readMetas(f) {
		if m != nil && (best == nil || m.txid > best.txid) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("%w: %s (%d bytes) is not a bbolt file, or both its meta pages fail their checksum; move it aside to start with an empty store", ErrDamaged, path, size)
	}
	need := int64(best.highWater) * int64(best.pageSize)
	if need > size || best.root >= best.highWater || (best.freelist != noFreelist && best.freelist >= best.highWater) {
		return fmt.Errorf("%w: %s is truncated: %d bytes, but its meta page says %d are in use; restore it from a backup or move it aside to start with an empty store", ErrDamaged, path, size, need)
	}
	return nil
}

// readMetas returns the two meta pages, nil where one is unreadable or fails its checksum.
// The second page's offset depends on the page size, which the first page gives; when the
// first is damaged, the usual page sizes are tried, as bbolt does.
func readMetas(r io.ReaderAt) [2]*meta {
	var out [2]*meta
	out[0] = readMeta(r, 0)
	if out[0] != nil {
		out[1] = readMeta(r, int64(out[0].pageSize))
		return out
	}
	for ps := int64(1024); ps <= 64<<10; ps *= 2 {
		if m := readMeta(r, ps); m != nil && int64(m.pageSize) == ps {
			out[1] = m
			break
		}
	}
	return out
}

func readMeta(r io.ReaderAt, off int64) *meta {
	var b [pageHeaderSize + metaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return nil
	}
	m := b[pageHeaderSize:]
	le := binary.NativeEndian // bbolt writes its structs as they are in memory
	if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != metaVersion {
		return nil
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:metaSumOffset])
	if h.Sum64() != le.Uint64(m[metaSumOffset:]) {
		return nil
	}
	ps := le.Uint32(m[8:])
	if ps < 512 || ps&(ps-1) != 0 {
		return nil
	}
	return &meta{pageSize: ps, root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		highWater: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
}
