package boltdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// storeFile writes a real bbolt file with enough data to span many pages.
func storeFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < 2000; i++ {
			if err := b.Put([]byte(fmt.Sprintf("key-%05d", i)), make([]byte, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckFile(t *testing.T) {
	if err := checkFile(filepath.Join(t.TempDir(), "absent.db")); err != nil {
		t.Fatalf("a missing file is a new store: %v", err)
	}
	path := storeFile(t)
	if err := checkFile(path); err != nil {
		t.Fatalf("an intact file: %v", err)
	}
	// The file is larger than its data (bbolt grows it ahead); cutting that slack is harmless,
	// cutting into the data is not.
	f, _ := os.Open(path)
	m := readMetas(f)[0]
	f.Close()
	used := int64(m.highWater) * int64(m.pageSize)
	for _, size := range []int64{8192, used / 2, used - 1} {
		p := storeFile(t)
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		err := checkFile(p)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut to %d of %d bytes in use: %v", size, used, err)
		}
		// And the handle refuses it instead of letting bbolt map it.
		if _, err := New(p).DB(); !errors.Is(err, ErrDamaged) {
			t.Errorf("cut to %d: DB() = %v", size, err)
		}
	}
	p := storeFile(t)
	if err := os.Truncate(p, used); err != nil {
		t.Fatal(err)
	}
	if err := checkFile(p); err != nil {
		t.Errorf("cut to exactly the bytes in use: %v", err)
	}
	// Both meta pages damaged: not a store file any more.
	p = storeFile(t)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{16 + 20, 4096 + 16 + 20} {
		if _, err := f.WriteAt([]byte{0xff, 0xfe}, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if err := checkFile(p); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("both metas damaged: %v", err)
	}
	// Not a bbolt file at all.
	junk := filepath.Join(t.TempDir(), "junk.db")
	_ = os.WriteFile(junk, []byte("hello"), 0o600)
	if err := checkFile(junk); !errors.Is(err, ErrDamaged) {
		t.Errorf("junk: %v", err)
	}
}
