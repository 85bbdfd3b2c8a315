package boltqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// A record (and, in q_latest, the latest event of each type) is stored in a compact binary form (it is rewritten on every attempt, so JSON's
// cost showed up in the delivery benchmark):
//
//	version byte: 1, 2 when the record has a transform error, 3 when an attempt kept a
//	response excerpt (so a file written by this version stays readable by the previous
//	ones, but for such records)
//	strings ID, Endpoint, Event.ID, Event.Type, State, header (queue.EncodeHeader, "" for none; JSON in records written before 2026-12-06), Event.TransformError (versions 2, 3)
//	varints Event.Created, N, NextAt, Created, DeadAt, Expires (unix nanos / counts)
//	uvarint attempt count, then per attempt: varint At, uvarint Status, varint Latency, string Error, string Response (version 3)
//	the body, to the end
//
// Strings are uvarint length then bytes.
const codecVersion = 3

var errCorrupt = errors.New("corrupt queue record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeRecord(r *record) []byte {
	hdr := r.hdrEnc
	if hdr == "" {
		hdr = queue.EncodeHeader(r.Event.Header)
	}
	b := make([]byte, 0, 96+len(r.ID)*2+len(hdr)+len(r.Event.TransformError)+len(r.Attempts)*24+len(r.Event.Body))
	strs := []string{r.ID, r.Endpoint, r.Event.ID, r.Event.Type, string(r.State), hdr}
	version := byte(1)
	if r.Event.TransformError != "" {
		version = 2
	}
	for _, a := range r.Attempts {
		if a.Response != "" {
			version = 3
			break
		}
	}
	b = append(b, version)
	if version >= 2 {
		strs = append(strs, r.Event.TransformError)
	}
	for _, s := range strs {
		b = appendString(b, s)
	}
	var created int64
	if !r.Event.Created.IsZero() {
		created = r.Event.Created.UnixNano()
	}
	for _, v := range []int64{created, int64(r.N), r.NextAt, r.Created, r.DeadAt, r.Expires} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Attempts)))
	for _, a := range r.Attempts {
		b = binary.AppendVarint(b, a.At.UnixNano())
		b = binary.AppendUvarint(b, uint64(a.Status))
		b = binary.AppendVarint(b, int64(a.Latency))
		b = appendString(b, a.Error)
		if version >= 3 {
			b = appendString(b, a.Response)
		}
	}
	return append(b, r.Event.Body...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeRecord reads what encodeRecord wrote; with attempts false the history is
// skipped (Lease does not need it). The body is copied out of bbolt's memory.
func decodeRecord(v []byte, attempts bool) (record, error) {
	return decode(v, attempts, false)
}

// decodeRecordRaw reads a record to rewrite or delete in the same transaction: its
// attempts are read, its header is left encoded (hdrEnc) and its body is v's own bytes,
// valid only until the transaction ends. Finishing a delivery then copies its body once,
// into the new record, instead of decoding and encoding the header and copying the body
// twice.
func decodeRecordRaw(v []byte) (record, error) {
	return decode(v, true, true)
}

func decode(v []byte, attempts, raw bool) (record, error) {
	if len(v) == 0 || v[0] < 1 || v[0] > codecVersion {
		return record{}, errCorrupt
	}
	rd := &reader{b: v[1:]}
	var r record
	r.ID, r.Endpoint, r.Event.ID, r.Event.Type = rd.string(), rd.string(), rd.string(), rd.string()
	r.State = queue.State(rd.string())
	if hdr := rd.string(); raw {
		r.hdrEnc = hdr
	} else if hdr != "" {
		r.Event.Header, _ = queue.DecodeHeader(hdr)
	}
	if v[0] >= 2 {
		r.Event.TransformError = rd.string()
	}
	if c := rd.varint(); c != 0 {
		r.Event.Created = time.Unix(0, c).UTC()
	}
	r.N = int(rd.varint())
	r.NextAt, r.Created, r.DeadAt, r.Expires = rd.varint(), rd.varint(), rd.varint(), rd.varint()
	n := rd.uvarint()
	if rd.err != nil || n > queue.MaxAttemptsKept+1 {
		return record{}, errCorrupt
	}
	if attempts {
		r.Attempts = make([]queue.Attempt, 0, n)
	}
	for i := uint64(0); i < n; i++ {
		a := queue.Attempt{At: time.Unix(0, rd.varint()).UTC(), Status: int(rd.uvarint()), Latency: time.Duration(rd.varint()), Error: rd.string()}
		if v[0] >= 3 {
			a.Response = rd.string()
		}
		if attempts {
			r.Attempts = append(r.Attempts, a)
		}
	}
	if rd.err != nil {
		return record{}, rd.err
	}
	if raw {
		r.Event.Body = rd.b
	} else {
		r.Event.Body = bytes.Clone(rd.b)
	}
	return r, nil
}
