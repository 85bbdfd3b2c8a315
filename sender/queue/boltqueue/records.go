package boltqueue

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// record is a delivery as stored (see codec.go). Times are unix nanoseconds.
type record struct {
	ID       string
	Endpoint string
	Event    queue.Event
	State    queue.State
	N        int
	Attempts []queue.Attempt
	NextAt   int64
	Created  int64
	DeadAt   int64
	Expires  int64

	// hdrEnc is Event.Header as stored (queue.EncodeHeader): set by decodeRecordRaw (which leaves the
	// header undecoded) and by Enqueue (which encodes it once for the record and the
	// latest event); encodeRecord writes it instead of Event.Header when it is set.
	hdrEnc string
}

type epStatus struct {
	Delivered int64          `json:"delivered,omitempty"`
	Last      *queue.Attempt `json:"last,omitempty"`
}

func u64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

// epKey is endpoint 0 time id.
func epKey(ep string, t int64, id string) []byte {
	k := make([]byte, 0, len(ep)+1+8+len(id))
	k = append(k, ep...)
	k = append(k, 0)
	k = append(k, u64(t)...)
	return append(k, id...)
}

func epPrefix(ep string) []byte { return append([]byte(ep), 0) }

func getRecord(tx *bolt.Tx, id string) (record, bool) {
	return getRecordWith(tx, id, true)
}

// Records are kept in q_records under the time they were first written followed by their
// delivery id, and q_index maps a delivery id to that key. Delivery ids are hashes of the
// event id (random across the key space), so keyed by them a file that has grown spreads
// each commit's new records, and the rewrites of the records its deliveries finish, over
// as many pages as records; keyed by time, the records a commit writes or rewrites sit on
// the few pages at the end of the tree, and only the index's small entries land at random.
// Records written by earlier versions stay in q_deliveries, read and rewritten there.

// recordsFill is how full q_records' pages are left when they split. New records go at the
// end of the tree, so bbolt's default (half full, for inserts at random) would leave every
// page half empty.
const recordsFill = 0.9

// recordKey is the q_records key of id's record, nil when id is not there.
func recordKey(tx *bolt.Tx, id string) []byte {
	return tx.Bucket(bIndex).Get([]byte(id))
}

// recordValue is id's stored record, nil for none.
func recordValue(tx *bolt.Tx, id string) []byte {
	if k := recordKey(tx, id); k != nil {
		return tx.Bucket(bRecords).Get(k)
	}
	return tx.Bucket(bDeliveries).Get([]byte(id))
}

// hasRecord reports whether a delivery with id exists.
func hasRecord(tx *bolt.Tx, id string) bool {
	return recordKey(tx, id) != nil || tx.Bucket(bDeliveries).Get([]byte(id)) != nil
}

// getRecordRaw is getRecord for a record about to be rewritten or deleted in the same
// transaction: the header stays encoded and the body points into the file's memory (see
// decodeRecordRaw).
func getRecordRaw(tx *bolt.Tx, id string) (record, bool) {
	v := recordValue(tx, id)
	if v == nil {
		return record{}, false
	}
	r, err := decodeRecordRaw(v)
	return r, err == nil
}

func getRecordWith(tx *bolt.Tx, id string, attempts bool) (record, bool) {
	v := recordValue(tx, id)
	if v == nil {
		return record{}, false
	}
	r, err := decodeRecord(v, attempts)
	return r, err == nil
}

func putRecord(tx *bolt.Tx, r *record) error {
	v := encodeRecord(r)
	recs := tx.Bucket(bRecords)
	recs.FillPercent = recordsFill
	if k := recordKey(tx, r.ID); k != nil {
		return recs.Put(k, v)
	}
	old := tx.Bucket(bDeliveries)
	if old.Get([]byte(r.ID)) != nil {
		return old.Put([]byte(r.ID), v)
	}
	k := make([]byte, 0, 8+len(r.ID))
	k = append(append(k, u64(time.Now().UnixNano())...), r.ID...)
	idx := tx.Bucket(bIndex)
	idx.FillPercent = bolt.DefaultFillPercent // hashed ids land at random: pages split half full
	if timeOrdered(r.ID) {
		idx.FillPercent = recordsFill // at the end of its endpoint's range, as in q_records
	}
	if err := idx.Put([]byte(r.ID), k); err != nil {
		return err
	}
	return recs.Put(k, v)
}

// timeOrdered reports whether delivery id was made from a time-ordered event id (see
// queue.DeliveryID), not hashed.
func timeOrdered(id string) bool {
	i := strings.LastIndexByte(id, '~')
	return i >= 0 && i+1 < len(id) && id[i+1] != 'h'
}

// deleteRecord removes id's record wherever it is kept.
func deleteRecord(tx *bolt.Tx, id string) error {
	if k := recordKey(tx, id); k != nil {
		if err := tx.Bucket(bRecords).Delete(k); err != nil {
			return err
		}
		return tx.Bucket(bIndex).Delete([]byte(id))
	}
	return tx.Bucket(bDeliveries).Delete([]byte(id))
}

func getStatus(tx *bolt.Tx, ep string) epStatus {
	var st epStatus
	if v := tx.Bucket(bEndpoints).Get([]byte(ep)); v != nil {
		_ = json.Unmarshal(v, &st)
	}
	return st
}

func putStatus(tx *bolt.Tx, ep string, st epStatus) error {
	v, _ := json.Marshal(st)
	return tx.Bucket(bEndpoints).Put([]byte(ep), v)
}

// Kinds of count in bCounts.
const (
	countPending = 'p'
	countDead    = 'd'
)

// addCount moves an endpoint's pending or dead count by delta, in the transaction that
// moves the delivery, so Status and every metrics scrape read a number instead of scanning.
func addCount(tx *bolt.Tx, ep string, kind byte, delta int64) error {
	k := append(epPrefix(ep), kind)
	b := tx.Bucket(bCounts)
	var n int64
	if v := b.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return b.Put(k, u64(max(n+delta, 0)))
}

func getCount(tx *bolt.Tx, ep string, kind byte) int64 {
	if v := tx.Bucket(bCounts).Get(append(epPrefix(ep), kind)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func toDelivery(r record, attempts bool, tok string) queue.Delivery {
	d := queue.Delivery{ID: r.ID, Endpoint: r.Endpoint, Event: r.Event, State: r.State, AttemptCount: r.N,
		Created: time.Unix(0, r.Created).UTC(), Lease: tok}
	if r.State == queue.Pending {
		d.NextAt = time.Unix(0, r.NextAt).UTC()
	}
	if attempts {
		d.Attempts = r.Attempts
	}
	return d
}
