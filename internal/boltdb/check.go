package boltdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"unsafe"

	bolt "go.etcd.io/bbolt"
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
	freelistFlag   = 0x10
	maxFreelistIDs = 1 << 27 // 1 GiB of free page ids: far beyond any real file
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
	if best.freelist != noFreelist {
		if err := checkFreelist(f, best); err != nil {
			return fmt.Errorf("%w: %s: its freelist (page %d) %v; restore it from a backup or move it aside to start with an empty store", ErrDamaged, path, best.freelist, err)
		}
	}
	return nil
}

// checkFreelist reads the freelist page the way bbolt will as it opens the file, which it
// does without checking it: a page that is not a freelist panics there, and a page count
// that runs past the page makes bbolt read past its mapping.
func checkFreelist(r io.ReaderAt, m *meta) error {
	off := int64(m.freelist) * int64(m.pageSize)
	var hdr [pageHeaderSize + 8]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return fmt.Errorf("cannot be read: %v", err)
	}
	le := binary.NativeEndian
	id, flags, count, overflow := le.Uint64(hdr[0:]), le.Uint16(hdr[8:]), uint64(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if id != m.freelist || flags != freelistFlag {
		return fmt.Errorf("is not a freelist page (it says page %d, flags %#x)", id, flags)
	}
	if m.freelist+overflow >= m.highWater {
		return fmt.Errorf("runs past the pages in use (%d overflow pages)", overflow)
	}
	first := uint64(0)
	if count == 0xFFFF { // bbolt's escape: the real count is the first id slot
		count, first = le.Uint64(hdr[pageHeaderSize:]), 1
	}
	if count > maxFreelistIDs || pageHeaderSize+(first+count)*8 > (overflow+1)*uint64(m.pageSize) {
		return fmt.Errorf("lists %d free pages, more than it can hold", count)
	}
	ids := make([]byte, count*8)
	if _, err := r.ReadAt(ids, off+pageHeaderSize+int64(first)*8); err != nil {
		return fmt.Errorf("cannot be read: %v", err)
	}
	for i := uint64(0); i < count; i++ {
		if p := le.Uint64(ids[i*8:]); p < 2 || p >= m.highWater {
			return fmt.Errorf("lists page %d as free, outside the pages in use", p)
		}
	}
	return nil
}

// prefetch reads the file once, in order, so that the page check after it walks the
// B+tree in the page cache: walked straight from a cold disk, a 1 GB file took 20 s of
// random reads; read in order first, 3 s plus 0.5 s (bench/storecheck.sh). An error only
// means no prefetch: the check reads what it needs anyway.
func prefetch(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}

// checkPages checks a freshly opened file page by page, before any store reads it:
// first a walk of every bucket, key and value through bbolt's own cursors (which assert
// each page's id and type), with memory faults turned into panics and every key and value
// required to lie inside the pages in use; then bbolt's Tx.Check (freelist against tree,
// pages referenced twice, key order). The walk comes first because Tx.Check runs in a
// goroutine of its own: it recovers bbolt's panics, but a fault there could not be caught.
// Nothing else uses the file yet, so the check runs in a read-only transaction, the
// cheaper kind.
func checkPages(path string, db *bolt.DB) (err error) {
	fail := func(what string) error {
		return fmt.Errorf("%w: %s: %s; restore it from a backup or move it aside to start with an empty store", ErrDamaged, path, what)
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fail(fmt.Sprintf("a page cannot be read: %v", r))
		}
	}()
	base := db.Info().Data
	return db.View(func(tx *bolt.Tx) error {
		w := &walker{lo: base, hi: base + uintptr(tx.Size())}
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error { return w.child(name, b) }); err != nil {
			return fail(err.Error())
		}
		var errs []string
		for e := range tx.Check(bolt.WithKVStringer(lengthOnly{})) {
			if len(errs) < 3 {
				errs = append(errs, e.Error())
			}
		}
		if len(errs) > 0 {
			return fail("its pages are inconsistent: " + strings.Join(errs, "; "))
		}
		return nil
	})
}

// lengthOnly shows keys and values in Tx.Check's messages by their length: the message
// reaches logs and the admin API, and keys are senders' event ids.
type lengthOnly struct{}

func (lengthOnly) KeyToString(k []byte) string   { return fmt.Sprintf("<%d bytes>", len(k)) }
func (lengthOnly) ValueToString(v []byte) string { return fmt.Sprintf("<%d bytes>", len(v)) }

// walker reads every key and value of a bucket and its nested buckets.
type walker struct {
	lo, hi uintptr
	sum    byte // what was read, so that the reads are not optimized away
}

func (w *walker) inside(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= w.lo && p < w.hi && uintptr(len(b)) <= w.hi-p
}

// child walks a bucket found in the one being walked (or at the top).
func (w *walker) child(name []byte, b *bolt.Bucket) error {
	if b.Root() != 0 {
		return w.bucket(name, b)
	}
	// An inline bucket lives in its parent's value, which bbolt may copy to the heap to
	// align it: its keys are bounded by that copy, not by the mapping.
	inner := &walker{lo: 0, hi: ^uintptr(0)}
	err := inner.bucket(name, b)
	w.sum ^= inner.sum
	return err
}

func (w *walker) bucket(name []byte, b *bolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) == 0 {
			return fmt.Errorf("bucket %q: an empty key", name)
		}
		if !w.inside(k) || !w.inside(v) {
			return fmt.Errorf("bucket %q: a key or value points outside the pages in use", name)
		}
		w.sum ^= k[len(k)-1] // read: a key or value on a page past the file faults here
		if len(v) > 0 {
			w.sum ^= v[0] ^ v[len(v)-1]
		}
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := w.child(k, nb); err != nil {
					return err
				}
			}
		}
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
