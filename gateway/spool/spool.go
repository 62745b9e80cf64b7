// Package spool is the uplink's durable store-and-forward buffer: an
// append-only log of numbered records (samples, keyed by their seq) split
// into segment files in one directory, trimmed when the backend acknowledges
// and bounded in size by dropping the oldest segments.
//
// On disk a segment is named after the first seq it may hold
// (00000000000000000042.seg) and holds records framed as
//
//	u32 length of data | u32 CRC32C of (seq, data) | u64 seq | data
//
// all little-endian. Records are strictly increasing in seq across the whole
// log. Open scans every segment (recover.go): a record that is incomplete,
// fails its checksum or is out of order is logged and skipped, the scan
// resynchronising on the next valid record, so the records after it are
// kept; damage that no valid record follows (a torn write at a crash) is
// truncated away. Seqs from file names and the acked file are checked
// against the records.
//
// The newest segment is never removed, so the highest seq ever stored (or the
// first seq of an empty newest segment, less one) survives a restart: seq
// numbering continues from LastSeq. The highest acknowledged seq is kept in
// the file "acked" (written when segments are trimmed and at Close), so that
// a restart resends as little as possible; losing it only means resending.
//
// A record becomes readable (Read) once it is durable by the fsync policy:
// FsyncAlways after the fsync of its append, FsyncBatch after the periodic
// fsync that covers it, FsyncNever once written to the OS. So nothing is
// sent upstream that a power cut could take back, and a seq that reached
// the backend is never reused after a restart (with FsyncNever the OS
// decides, and that promise is weaker).
//
// Add is the non-blocking entry point for producers that must never wait
// for a disk (the sensor sampler): it copies the record into memory and a
// background goroutine (started by Open, stopped by Close) writes it.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/gateway/fileutil"
)

// Fsync is when appended records are forced to stable storage.
type Fsync int

const (
	// FsyncBatch fsyncs every SyncInterval (default 200 ms).
	FsyncBatch Fsync = iota
	// FsyncAlways fsyncs every append batch before its records count.
	FsyncAlways
	// FsyncNever leaves it to the OS.
	FsyncNever
)

func (f Fsync) String() string {
	switch f {
	case FsyncAlways:
		return "always"
	case FsyncNever:
		return "never"
	}
	return "batch"
}

// ParseFsync reads always, batch or never.
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "batch", "":
		return FsyncBatch, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("fsync %q: want always, batch or never", s)
}

// HeaderSize is the framing overhead of one record.
const HeaderSize = 16

// MaxRecordBytes is the largest record data accepted.
const MaxRecordBytes = 1 << 20

const (
	segSuffix    = ".seg"
	ackedFile    = "acked"
	minSegment   = 4 << 10
	maxSegment   = 8 << 20
	defaultSync  = 200 * time.Millisecond
	defaultQueue = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Spool. Zero values get defaults.
type Options struct {
	// Dir holds the segments; it is created if missing.
	Dir string
	// MaxBytes bounds the segment files' total size; past it the oldest
	// segments are deleted and their unacknowledged records counted as
	// dropped. Default 64 MiB.
	MaxBytes int64
	Fsync    Fsync
	// SyncInterval is FsyncBatch's period (default 200 ms).
	SyncInterval time.Duration
	// SegmentBytes is the size at which a new segment is started
	// (default MaxBytes/8, within 4 KiB … 8 MiB).
	SegmentBytes int64
	// MaxPending bounds the records Add holds in memory while the disk is
	// behind (default 65536); past it the oldest are dropped and counted.
	MaxPending int
	Logger     *slog.Logger
	// BoundKey is the configuration key of MaxBytes, named in the warning
	// that the buffer is full (default upstream.buffer_max_bytes).
	BoundKey string

	// write writes to a segment file (f.Write when nil): tests inject
	// errors here, a full disk for one.
	write func(f *os.File, b []byte) (int, error)
}

// Record is one stored record. Data returned by Read is only valid until
// the next Read.
type Record struct {
	Seq  uint64
	Data []byte
}

// Stats are the spool's counters, ready for /metrics.
type Stats struct {
	Depth      uint64 // records stored or pending and not yet acknowledged
	Bytes      int64  // size of the segment files
	Segments   int
	Pending    int    // records added but not yet written
	LastSeq    uint64 // highest seq added or stored
	DurableSeq uint64 // highest seq readable (durable by the fsync policy)
	AckedSeq   uint64
	Dropped    uint64 // records lost to the size bound or the pending bound
	Recovered  uint64 // torn or corrupt records cut away at Open
	Corrupt    uint64 // of those, corrupt records skipped (see recover.go)
	// Error is why the buffer cannot write (a full disk, say) while that
	// lasts, with what to do; empty once a write succeeds again.
	Error string
}

type segment struct {
	first    uint64 // from the file name; records have seq ≥ first
	firstRec uint64 // lowest seq in it, 0 when empty
	last     uint64 // highest seq in it, 0 when empty
	count    uint64
	size     int64
	path     string
}

// Spool is a durable log of records. Add, Stats and Ack may be called from
// any goroutine; Read from one consumer at a time.
type Spool struct {
	opts Options
	log  *slog.Logger

	// pending records from Add, waiting for the writer goroutine.
	pmu      sync.Mutex
	pendData []byte
	pendRecs []pendRec
	pendLast uint64
	kick     chan struct{}

	mu       sync.Mutex // segments, the active file, the read cursor
	segs     []*segment
	active   *os.File
	bytes    int64
	durable  uint64 // highest readable seq
	written  uint64 // highest seq written to the OS
	unsynced bool
	acked    uint64
	ackSaved uint64
	rd       reader
	wbuf     []byte

	// I/O trouble: the last write or sync error until one succeeds, since
	// when, and when it was last logged.
	ioErr       error
	ioErrSince  time.Time
	ioErrLogged time.Time
	// tornTail: a failed write may have left part of a record after the
	// active segment's size, and truncating it away failed too.
	tornTail bool

	dropped   atomic.Uint64
	recovered uint64
	corrupt   uint64
	notify    chan struct{}

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type pendRec struct {
	seq      uint64
	off, len int
}

// reader is the consumer's cursor: an open segment and an offset after the
// record with seq pos.
type reader struct {
	f    *os.File
	seg  *segment
	off  int64
	pos  uint64
	buf  []byte
	recs []Record
}

// Open opens (or creates) the spool in opts.Dir, recovers it and starts its
// writer goroutine.
func Open(opts Options) (*Spool, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = defaultSync
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/8, minSegment), maxSegment)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = defaultQueue
	}
	if opts.BoundKey == "" {
		opts.BoundKey = "upstream.buffer_max_bytes"
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", opts.Dir, err)
	}
	s := &Spool{
		opts: opts, log: opts.Logger,
		kick: make(chan struct{}, 1), notify: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.run()
	return s, nil
}

func checksum(seq []byte, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(seq, castagnoli), castagnoli, data)
}

// LastSeq is the highest seq stored, added or acknowledged: a producer
// continues numbering after it.
func (s *Spool) LastSeq() uint64 {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.pendLast
}

// Add queues a record for writing without waiting for the disk. Records
// must come in increasing seq order; one that does not is ignored. When
// MaxPending records are already waiting, the oldest waiting one is dropped
// and counted.
func (s *Spool) Add(seq uint64, data []byte) {
	s.pmu.Lock()
	if seq <= s.pendLast || len(data) > MaxRecordBytes {
		s.pmu.Unlock()
		return
	}
	if len(s.pendRecs) >= s.opts.MaxPending {
		// The disk is behind by MaxPending records: drop the oldest.
		s.pendRecs = append(s.pendRecs[:0], s.pendRecs[1:]...)
		s.dropped.Add(1)
		if off := s.pendRecs[0].off; off > len(s.pendData)/2 {
			// Reclaim the dropped records' bytes.
			n := copy(s.pendData, s.pendData[off:])
			s.pendData = s.pendData[:n]
			for i := range s.pendRecs {
				s.pendRecs[i].off -= off
			}
		}
	}
	s.pendRecs = append(s.pendRecs, pendRec{seq: seq, off: len(s.pendData), len: len(data)})
	s.pendData = append(s.pendData, data...)
	s.pendLast = seq
	s.pmu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run is the writer goroutine: it writes what Add queued and, for
// FsyncBatch, syncs every SyncInterval.
func (s *Spool) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.Fsync == FsyncBatch {
		t := time.NewTicker(s.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var data []byte
	var recs []Record
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			if failing {
				// The disk refused the last write: new samples wait in
				// memory for the retry rather than each trying again.
				continue
			}
		case <-retry.C:
		case <-tick:
			s.Sync() // an error is logged and shown in Stats by noteIOLocked
			continue
		}
		var err error
		data, recs, err = s.writePending(data, recs)
		failing = err != nil
		if failing {
			retry.Reset(retryInterval)
		}
	}
}

// retryInterval is how often a write the disk refused is tried again.
const retryInterval = time.Second

// ioErrLogEvery is how often a lasting write error is logged again.
const ioErrLogEvery = time.Minute

// noteIOLocked keeps the outcome of a write or sync for Stats and logs the
// changes: the first error (again every ioErrLogEvery while it lasts) and
// the first success after errors.
func (s *Spool) noteIOLocked(err error) {
	now := time.Now()
	if err == nil {
		if s.ioErr != nil {
			s.log.Warn("spool: writing to the buffer again", "dir", s.opts.Dir,
				"failed_for", now.Sub(s.ioErrSince).Round(time.Millisecond).String(), "dropped_total", s.dropped.Load())
			s.ioErr = nil
		}
		return
	}
	if s.ioErr == nil {
		s.ioErrSince = now
	}
	if s.ioErr == nil || now.Sub(s.ioErrLogged) >= ioErrLogEvery {
		s.log.Error("spool: cannot write the buffer; samples wait in memory (past the pending bound the oldest are dropped and counted) and the write is retried every second",
			"dir", s.opts.Dir, "err", err, "hint", ioHint(err), "dropped_total", s.dropped.Load())
		s.ioErrLogged = now
	}
	s.ioErr = err
}

// ioHint says what to do about a write error.
func ioHint(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the data directory's file system is full: free space on it; writing resumes by itself"
	case errors.Is(err, syscall.EROFS):
		return "the data directory's file system is read-only: remount it read-write; writing resumes by itself"
	}
	return "check the data directory and its disk; writing resumes by itself once it works"
}

// writePending moves the pending records to disk. On failure they are put
// back in front of any newer ones.
func (s *Spool) writePending(data []byte, recs []Record) ([]byte, []Record, error) {
	s.pmu.Lock()
	pd, pr := s.pendData, s.pendRecs
	s.pendData, s.pendRecs = data[:0], nil
	s.pmu.Unlock()
	if len(pr) == 0 {
		return pd, recs, nil
	}
	recs = recs[:0]
	for _, r := range pr {
		recs = append(recs, Record{Seq: r.seq, Data: pd[r.off : r.off+r.len]})
	}
	if err := s.Append(recs); err != nil {
		// Put them back, older first; Append wrote none of those after
		// s.written.
		s.mu.Lock()
		written := s.written
		s.mu.Unlock()
		s.pmu.Lock()
		var back []pendRec
		var backData []byte
		for _, r := range pr {
			if r.seq > written {
				back = append(back, pendRec{seq: r.seq, off: len(backData), len: r.len})
				backData = append(backData, pd[r.off:r.off+r.len]...)
			}
		}
		for _, r := range s.pendRecs {
			back = append(back, pendRec{seq: r.seq, off: len(backData), len: r.len})
			backData = append(backData, s.pendData[r.off:r.off+r.len]...)
		}
		if n := len(back) - s.opts.MaxPending; n > 0 {
			back = back[n:]
			s.dropped.Add(uint64(n))
		}
		s.pendRecs, s.pendData = back, backData
		s.pmu.Unlock()
		return nil, recs, err
	}
	s.pmu.Lock()
	if s.pendRecs == nil && cap(pd) > cap(s.pendData) {
		// Nothing new arrived meanwhile: reuse the larger buffer.
		s.pendData, pd = pd[:0], s.pendData
	}
	s.pmu.Unlock()
	return pd, recs, nil
}

// Append writes records synchronously (in increasing seq order; any at or
// below what is stored are skipped), starting new segments as needed and
// enforcing the size bound. With FsyncAlways they are synced before it
// returns.
func (s *Spool) Append(recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return errors.New("spool: closed")
	}
	buf := s.wbuf[:0]
	var last, count uint64 // of the records in buf
	// commit writes buf to the active segment.
	commit := func() error {
		seg := s.segs[len(s.segs)-1]
		if s.tornTail { // before anything is appended or the segment sealed
			if err := s.active.Truncate(seg.size); err != nil {
				err = fmt.Errorf("spool: truncate %s: %w", seg.path, err)
				s.noteIOLocked(err)
				return err
			}
			s.tornTail = false
		}
		if len(buf) == 0 {
			return nil
		}
		n, err := s.writeLocked(buf)
		if err != nil {
			// A partial record would break the framing: cut it off
			// (before the next write, if that fails now).
			if n > 0 && s.active.Truncate(seg.size) != nil {
				s.tornTail = true
			}
			err = fmt.Errorf("spool: write %s: %w", seg.path, err)
			s.noteIOLocked(err)
			return err
		}
		s.noteIOLocked(nil)
		seg.size += int64(n)
		s.bytes += int64(n)
		seg.last, seg.count = last, seg.count+count
		s.written = last
		s.unsynced = true
		buf, count = buf[:0], 0
		return nil
	}
	for _, r := range recs {
		if r.Seq <= s.written || r.Seq <= last || len(r.Data) > MaxRecordBytes {
			continue
		}
		seg := s.segs[len(s.segs)-1]
		if seg.size+int64(len(buf)) >= s.opts.SegmentBytes && seg.count+count > 0 {
			if err := commit(); err != nil {
				s.wbuf = buf[:0]
				return err
			}
			if err := s.roll(r.Seq); err != nil {
				s.noteIOLocked(err)
				s.wbuf = buf[:0]
				return err
			}
		}
		var hdr [HeaderSize]byte
		binary.LittleEndian.PutUint32(hdr[0:], uint32(len(r.Data)))
		binary.LittleEndian.PutUint64(hdr[8:], r.Seq)
		binary.LittleEndian.PutUint32(hdr[4:], checksum(hdr[8:16], r.Data))
		buf = append(buf, hdr[:]...)
		buf = append(buf, r.Data...)
		last, count = r.Seq, count+1
	}
	err := commit()
	s.wbuf = buf[:0]
	if err != nil {
		return err
	}
	s.pmu.Lock() // lock order: mu, then pmu
	s.pendLast = max(s.pendLast, s.written)
	s.pmu.Unlock()
	switch s.opts.Fsync {
	case FsyncAlways:
		if err := s.syncLocked(); err != nil {
			return err
		}
	case FsyncNever:
		s.setDurableLocked(s.written)
	}
	s.trimLocked()
	return nil
}

// writeLocked writes b to the active segment.
func (s *Spool) writeLocked(b []byte) (int, error) {
	if s.opts.write != nil {
		return s.opts.write(s.active, b)
	}
	return s.active.Write(b)
}

// roll starts a new segment for records from first on and seals the active
// one (synced unless FsyncNever).
func (s *Spool) roll(first uint64) error {
	path := filepath.Join(s.opts.Dir, fmt.Sprintf("%020d%s", first, segSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", path, err)
	}
	if s.active != nil {
		if s.opts.Fsync != FsyncNever {
			if err := s.syncLocked(); err != nil {
				f.Close()
				os.Remove(path)
				return err
			}
		}
		s.active.Close()
	}
	s.active = f
	s.segs = append(s.segs, &segment{first: first, path: path})
	if s.opts.Fsync != FsyncNever {
		fileutil.SyncDir(s.opts.Dir)
	}
	return nil
}

// Sync forces what was written to stable storage and makes it readable.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	if s.active == nil {
		return nil
	}
	if s.unsynced {
		if err := s.active.Sync(); err != nil {
			err = fmt.Errorf("spool: fsync %s: %w", s.segs[len(s.segs)-1].path, err)
			s.noteIOLocked(err)
			return err
		}
		s.unsynced = false
		s.noteIOLocked(nil)
	}
	s.setDurableLocked(s.written)
	return nil
}

func (s *Spool) setDurableLocked(seq uint64) {
	if seq > s.durable {
		s.durable = seq
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// Notify is signalled (capacity 1) whenever more records became readable.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// trimLocked deletes sealed segments that hold only acknowledged records,
// then the oldest sealed segments while the files are over MaxBytes.
func (s *Spool) trimLocked() {
	removed := false
	for len(s.segs) > 1 {
		seg := s.segs[0]
		next := s.segs[1]
		if next.first-1 > s.acked {
			break
		}
		s.removeLocked(seg)
		removed = true
	}
	for len(s.segs) > 1 && s.bytes > s.opts.MaxBytes {
		seg := s.segs[0]
		lost := seg.count
		if seg.last != 0 && s.acked >= seg.first {
			lost = seg.last - min(s.acked, seg.last) // those above the ack
			lost = min(lost, seg.count)
		}
		if lost > 0 {
			s.dropped.Add(lost)
			s.log.Warn("spool: buffer full ("+s.opts.BoundKey+"); dropping the oldest samples",
				"segment", seg.path, "dropped", lost, "max_bytes", s.opts.MaxBytes)
		}
		s.removeLocked(seg)
		removed = true
	}
	if removed {
		s.saveAckLocked()
	}
}

func (s *Spool) removeLocked(seg *segment) {
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("spool: remove segment", "segment", seg.path, "err", err)
	}
	s.bytes -= seg.size
	s.segs = s.segs[1:]
	if s.rd.seg == seg {
		s.rd.close()
	}
}

// saveAckLocked writes the acked seq (temp file, rename; best effort: a
// stale value only means resending).
func (s *Spool) saveAckLocked() {
	if s.acked == s.ackSaved {
		return
	}
	path := filepath.Join(s.opts.Dir, ackedFile)
	if err := fileutil.WriteAtomic(path, []byte(strconv.FormatUint(s.acked, 10)+"\n"), s.opts.Fsync != FsyncNever); err != nil {
		s.log.Warn("spool: save acked seq", "err", err)
		return
	}
	s.ackSaved = s.acked
}

// Ack records that every record with seq ≤ seq is safe upstream and deletes
// the segments that held only those.
func (s *Spool) Ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.acked {
		return
	}
	s.acked = min(seq, s.durable)
	s.trimLocked()
}

// Read returns up to max readable records with seq > after, their data
// together at most maxBytes (but always at least one record if any is
// readable). The result is valid until the next Read. Records lost to the
// size bound are simply absent: the result may start above after+1.
func (s *Spool) Read(after uint64, max, maxBytes int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rd := &s.rd
	rd.recs = rd.recs[:0]
	rd.buf = rd.buf[:0]
	if after >= s.durable || max <= 0 {
		return rd.recs, nil
	}
	if rd.seg == nil || after != rd.pos || !s.hasSegLocked(rd.seg) {
		if err := s.seekLocked(after); err != nil {
			return nil, err
		}
	}
	var hdr [HeaderSize]byte
	for len(rd.recs) < max && rd.seg != nil {
		if rd.pos >= s.durable {
			break
		}
		seg := rd.seg
		if rd.off >= seg.size {
			next := s.nextSegLocked(seg)
			if next == nil {
				break
			}
			if err := rd.open(next); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := rd.f.ReadAt(hdr[:], rd.off); err != nil {
			return nil, fmt.Errorf("spool: read %s: %w", seg.path, err)
		}
		n := int(binary.LittleEndian.Uint32(hdr[0:]))
		seq := binary.LittleEndian.Uint64(hdr[8:])
		if seq > s.durable {
			break
		}
		if len(rd.recs) > 0 && len(rd.buf)+n > maxBytes {
			break
		}
		start := len(rd.buf)
		rd.buf = append(rd.buf, make([]byte, n)...)
		if _, err := rd.f.ReadAt(rd.buf[start:], rd.off+HeaderSize); err != nil {
			return nil, fmt.Errorf("spool: read %s: %w", seg.path, err)
		}
		rd.off += int64(HeaderSize + n)
		rd.pos = seq
		if seq > after {
			rd.recs = append(rd.recs, Record{Seq: seq, Data: rd.buf[start:]})
		} else {
			rd.buf = rd.buf[:start]
		}
	}
	// The data slices alias rd.buf, which may have moved while growing:
	// point them at the final buffer.
	off := 0
	for i := range rd.recs {
		n := len(rd.recs[i].Data)
		rd.recs[i].Data = rd.buf[off : off+n : off+n]
		off += n
	}
	return rd.recs, nil
}

func (s *Spool) hasSegLocked(seg *segment) bool {
	for _, x := range s.segs {
		if x == seg {
			return true
		}
	}
	return false
}

func (s *Spool) nextSegLocked(seg *segment) *segment {
	for i, x := range s.segs {
		if x == seg && i+1 < len(s.segs) {
			return s.segs[i+1]
		}
	}
	return nil
}

// seekLocked positions the reader at the start of the segment that holds
// the first record after after; Read then skips records ≤ after.
func (s *Spool) seekLocked(after uint64) error {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > after+1 }) - 1
	i = max(i, 0)
	if err := s.rd.open(s.segs[i]); err != nil {
		return err
	}
	s.rd.pos = 0
	return nil
}

func (r *reader) open(seg *segment) error {
	r.close()
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", seg.path, err)
	}
	r.f, r.seg, r.off = f, seg, 0
	return nil
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.seg, r.off, r.pos = nil, nil, 0, 0
}

// Stats returns the counters.
func (s *Spool) Stats() Stats {
	s.pmu.Lock()
	pending := len(s.pendRecs)
	last := s.pendLast
	s.pmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Bytes: s.bytes, Segments: len(s.segs), Pending: pending, LastSeq: last,
		DurableSeq: s.durable, AckedSeq: s.acked, Dropped: s.dropped.Load(), Recovered: s.recovered,
		Corrupt: s.corrupt,
	}
	if s.ioErr != nil {
		st.Error = s.ioErr.Error() + " (" + ioHint(s.ioErr) + ")"
	}
	for _, seg := range s.segs {
		switch {
		case seg.count == 0 || seg.last <= s.acked:
		case seg.first > s.acked:
			st.Depth += seg.count
		default:
			st.Depth += min(seg.count, seg.last-s.acked)
		}
	}
	st.Depth += uint64(pending)
	return st
}

// Close writes and syncs what is pending, saves the acked seq and stops the
// writer goroutine.
func (s *Spool) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		_, _, err = s.writePending(nil, nil)
		s.mu.Lock()
		defer s.mu.Unlock()
		if e := s.syncLocked(); err == nil {
			err = e
		}
		s.saveAckLocked()
		s.closeFiles()
	})
	return err
}

func (s *Spool) closeFiles() {
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
	s.rd.close()
}
