package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/edgegate/edgegate/gateway/fileutil"
)

// Recovery at Open.
//
// The record format has no sync marker, so a damaged record is passed over
// by searching forward, one byte at a time, for the next offset that holds
// a valid record: a length within MaxRecordBytes that fits in the file, a
// seq above the last good one (and within maxSeq), and a CRC32C over seq
// and data that matches. A random 16-byte header passes the length, seq
// and checksum tests together with a probability far below 2⁻³², so the
// search does not take garbage for a record. The search checksums at most
// resyncBudget bytes per segment, so that a hostile file cannot keep Open
// busy for long; past that the rest of the segment is given up.
//
// Damaged bytes with a valid record after them are a corrupt record: they
// are skipped (logged, counted in Stats.Corrupt) and the segment is
// rewritten without them (temporary file, fsync, rename), so that Read,
// which trusts the framing, never sees them. Damaged bytes with no valid
// record after them are the torn end of a write cut short: they are
// truncated away, as before (counted in Stats.Corrupt too when the segment
// is not the newest, which a crash cannot tear).
//
// Seqs that come from a file name or from the acked file are not protected
// by a checksum: they are checked against the records. A segment name above
// its first record's seq (or at or below the previous segment's last) is
// clamped and the file renamed; an empty newest segment may be named at most
// one past the last stored seq; an acked seq beyond the last stored seq is
// not believed, and the whole buffer is resent (the backend drops what it
// has by seq). Nothing above maxSeq is believed at all, so LastSeq, and the
// hub's numbering after it, can never be made huge or wrap.

// maxSeq is the highest seq believed from disk: at a billion samples a
// second it takes 146 years to get there, and it is far from wrapping.
const maxSeq = 1 << 62

// resyncBudget bounds the bytes checksummed while searching one segment for
// the next valid record.
const resyncBudget = 64 << 20

// scanWindow is how much of a segment recovery reads at a time.
const scanWindow = 64 << 10

// recover loads the segments, skips corrupt records, cuts torn tails,
// checks the seqs that names and the acked file claim, and opens the newest
// segment for appending.
func (s *Spool) recover() error {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", s.opts.Dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(s.opts.Dir, name)) // an interrupted ack write or segment rewrite
			continue
		}
		if !strings.HasSuffix(name, segSuffix) || !e.Type().IsRegular() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 {
			s.log.Warn("spool: ignoring a file that is not a segment", "file", filepath.Join(s.opts.Dir, name))
			continue
		}
		s.segs = append(s.segs, &segment{first: first, path: filepath.Join(s.opts.Dir, name)})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].first < s.segs[j].first })
	s.loadAcked()

	var prev, oldest uint64 // the last good seq so far, the first one stored
	kept := s.segs[:0]
	for i, seg := range s.segs {
		newest := i == len(s.segs)-1
		if err := s.scan(seg, prev, newest); err != nil {
			return err
		}
		if seg.count == 0 && !newest {
			// Nothing (left) in it: it only gets in the way of the order.
			if err := os.Remove(seg.path); err != nil {
				s.log.Warn("spool: remove an empty segment", "segment", seg.path, "err", err)
			}
			continue
		}
		if seg.count > 0 {
			if seg.first > seg.firstRec || seg.first <= prev {
				s.renameSegment(seg, min(max(seg.first, prev+1), seg.firstRec),
					"its name is not between the previous segment's last seq and its first record's")
			}
			if oldest == 0 {
				oldest = seg.firstRec
			}
			prev = seg.last
		}
		s.bytes += seg.size
		kept = append(kept, seg)
	}
	s.segs = kept

	// What is stored: the last record's seq or, with no record left, what
	// the empty newest segment's name says (it is created named one past
	// the last seq written).
	if n := len(s.segs); n > 0 && s.segs[n-1].count == 0 {
		seg := s.segs[n-1]
		want := seg.first
		switch {
		case oldest > 0 && seg.first != prev+1:
			want = prev + 1
		case oldest == 0 && seg.first-1 > maxSeq:
			want = min(s.acked, maxSeq) + 1
		}
		if want != seg.first {
			s.renameSegment(seg, want, "an empty newest segment is named one past the last stored seq")
		}
		prev = max(prev, seg.first-1)
	}
	if s.acked > prev {
		if oldest > 0 {
			s.log.Warn("spool: the acked seq is beyond the last stored seq: not believed; the whole buffer is resent (the backend drops what it already has)",
				"file", filepath.Join(s.opts.Dir, ackedFile), "acked_seq", s.acked, "last_stored_seq", prev, "resend_from", oldest)
			s.acked = oldest - 1
		} else {
			// No record is stored: the acked seq and the empty newest
			// segment's name are all that is left of the numbering (both
			// checked against maxSeq). The higher one is kept, so that seq
			// never goes back below what the backend may have.
			if len(s.segs) > 0 {
				s.log.Warn("spool: the acked seq is beyond the newest segment's name; numbering continues after the acked seq",
					"file", filepath.Join(s.opts.Dir, ackedFile), "acked_seq", s.acked, "segment", s.segs[0].path)
			}
			prev = s.acked
		}
	}
	s.written = prev
	s.durable = prev
	s.pendLast = prev
	if len(s.segs) == 0 {
		return s.roll(s.pendLast + 1)
	}
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", last.path, err)
	}
	s.active = f
	if s.opts.Fsync != FsyncNever {
		// What the last run wrote may still be only in the page cache;
		// it is about to be sent, so make it durable first.
		if err := f.Sync(); err != nil {
			return fmt.Errorf("spool: fsync %s: %w", last.path, err)
		}
	}
	if s.recovered > 0 {
		s.log.Warn("spool: recovered after an unclean stop or damage", "dir", s.opts.Dir,
			"records_cut", s.recovered, "corrupt_records_skipped", s.corrupt, "last_seq", s.pendLast)
	}
	s.trimLocked()
	return nil
}

// loadAcked reads the acked file. A missing file means nothing is known
// to be acknowledged; an unreadable or implausible one is logged and
// ignored, so that everything stored is resent.
func (s *Spool) loadAcked() {
	path := filepath.Join(s.opts.Dir, ackedFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Warn("spool: cannot read the acked seq; the whole buffer is resent", "file", path, "err", err)
		return
	}
	text := strings.TrimSpace(string(b[:min(len(b), 64)]))
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v > maxSeq {
		s.log.Warn("spool: ignoring an acked seq that is not a plausible seq; the whole buffer is resent",
			"file", path, "content", strconv.Quote(text))
		s.ackSaved = ^uint64(0) // rewritten at the next save
		return
	}
	s.acked, s.ackSaved = v, v
}

// renameSegment gives seg the first seq first, renaming its file to match
// (in memory only if that fails: the check is made again at the next Open).
func (s *Spool) renameSegment(seg *segment, first uint64, why string) {
	path := filepath.Join(s.opts.Dir, fmt.Sprintf("%020d%s", first, segSuffix))
	s.log.Warn("spool: a segment's name does not match its records: "+why+"; renaming it",
		"segment", seg.path, "to", path, "records", seg.count, "first_record_seq", seg.firstRec)
	seg.first = first
	if _, err := os.Lstat(path); err == nil {
		return
	}
	if err := os.Rename(seg.path, path); err != nil {
		s.log.Warn("spool: rename a segment", "segment", seg.path, "err", err)
		return
	}
	seg.path = path
	if s.opts.Fsync != FsyncNever {
		fileutil.SyncDir(s.opts.Dir)
	}
}

// span is a run of good records in a segment being scanned.
type span struct {
	off, end    int64
	count, last uint64
}

// scan reads a segment's records and checks each one's framing, checksum
// and order (seq above prev). A bad record is skipped and the records after
// it kept; a bad tail is truncated (see the comment at the top of this
// file). It sets seg's count, first and last record seqs and size.
func (s *Spool) scan(seg *segment, prev uint64, newest bool) error {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w (move the directory aside to start with an empty buffer)", seg.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: stat %s: %w", seg.path, err)
	}
	r := &segReader{f: f, size: fi.Size()}
	var spans []span
	budget := int64(resyncBudget)
	var off int64
	for off < r.size {
		n, seq, problem, err := r.record(off, prev)
		if err != nil {
			return fmt.Errorf("spool: read %s: %w", seg.path, err)
		}
		if problem == "" {
			if k := len(spans) - 1; k >= 0 && spans[k].end == off {
				spans[k].end, spans[k].count, spans[k].last = off+HeaderSize+n, spans[k].count+1, seq
			} else {
				spans = append(spans, span{off: off, end: off + HeaderSize + n, count: 1, last: seq})
			}
			if seg.count == 0 {
				seg.firstRec = seq
			}
			seg.count++
			seg.last, prev = seq, seq
			off += HeaderSize + n
			continue
		}
		next, gaveUp, err := r.resync(off+1, prev, &budget)
		if err != nil {
			return fmt.Errorf("spool: read %s: %w", seg.path, err)
		}
		s.recovered++
		if next < 0 {
			if !newest || gaveUp {
				s.corrupt++
			}
			msg := "spool: skipping the rest of a segment: it ends in " + problem + "; truncating it away"
			if gaveUp {
				msg = "spool: skipping the rest of a segment: it holds " + problem + " and too much damage after it to search for the next good record; truncating it away"
			}
			s.log.Warn(msg, "segment", seg.path, "offset", off, "bytes_cut", r.size-off, "after_seq", prev)
			break
		}
		s.corrupt++
		s.log.Warn("spool: skipping a corrupt record ("+problem+"); the records after it are kept",
			"segment", seg.path, "offset", off, "bytes_skipped", next-off, "after_seq", prev)
		off = next
	}
	seg.size = r.size
	switch {
	case len(spans) == 0 && r.size == 0:
		return nil
	case len(spans) == 1 && spans[0].off == 0 && spans[0].end == r.size:
		return nil // all good
	case len(spans) <= 1 && (len(spans) == 0 || spans[0].off == 0):
		// Good records (if any) at the start, then only damage.
		end := int64(0)
		if len(spans) == 1 {
			end = spans[0].end
		}
		return s.truncate(seg, f, end)
	}
	if err := s.rewrite(seg, f, spans); err != nil {
		// No room for the copy, most likely: keep what can be kept
		// without one, the good records before the first damage.
		end := int64(0)
		seg.count, seg.last = 0, 0
		if spans[0].off == 0 {
			end, seg.count, seg.last = spans[0].end, spans[0].count, spans[0].last
		}
		var lost uint64
		for _, sp := range spans {
			lost += sp.count
		}
		lost -= seg.count
		s.recovered += lost
		s.log.Error("spool: cannot rewrite a segment without its corrupt records; cutting it at the first one instead (free space on the data directory's file system to keep them next time)",
			"segment", seg.path, "err", err, "records_cut", lost)
		return s.truncate(seg, f, end)
	}
	return nil
}

// truncate cuts seg's file at end.
func (s *Spool) truncate(seg *segment, f *os.File, end int64) error {
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("spool: truncate %s at %d: %w (move the directory aside to start with an empty buffer)", seg.path, end, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool: sync %s: %w", seg.path, err)
	}
	seg.size = end
	if seg.count == 0 {
		seg.firstRec = 0
	}
	return nil
}

// rewrite replaces seg's file with the good spans of it: a temporary file,
// fsync, rename, fsync of the directory.
func (s *Spool) rewrite(seg *segment, f *os.File, spans []span) error {
	tmp := seg.path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	var size int64
	for _, sp := range spans {
		if _, err = io.Copy(out, io.NewSectionReader(f, sp.off, sp.end-sp.off)); err != nil {
			break
		}
		size += sp.end - sp.off
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, seg.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	fileutil.SyncDir(s.opts.Dir)
	seg.size = size
	return nil
}

// segReader reads a segment through a window, for recovery's forward scans.
type segReader struct {
	f    *os.File
	size int64
	off  int64 // file offset of buf[0]
	buf  []byte
}

// at returns n bytes at off (off+n ≤ size), valid until the next call.
func (r *segReader) at(off int64, n int64) ([]byte, error) {
	if off >= r.off && off+n <= r.off+int64(len(r.buf)) {
		return r.buf[off-r.off : off-r.off+n], nil
	}
	want := min(max(n, scanWindow), r.size-off)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	r.off = off
	if m, err := r.f.ReadAt(r.buf, off); int64(m) < want {
		r.buf = r.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file shrank under us
		}
		return nil, err
	}
	return r.buf[:n], nil
}

// record checks the record at off: it returns its data length and seq, or
// what is wrong with it.
func (r *segReader) record(off int64, prev uint64) (n int64, seq uint64, problem string, err error) {
	if r.size-off < HeaderSize {
		return 0, 0, fmt.Sprintf("a torn record header (%d of %d bytes)", r.size-off, HeaderSize), nil
	}
	hdr, err := r.at(off, HeaderSize)
	if err != nil {
		return 0, 0, "", err
	}
	n = int64(binary.LittleEndian.Uint32(hdr[0:]))
	sum := binary.LittleEndian.Uint32(hdr[4:])
	seq = binary.LittleEndian.Uint64(hdr[8:])
	if n > MaxRecordBytes {
		return 0, 0, fmt.Sprintf("a record length of %d bytes, over the %d limit", n, MaxRecordBytes), nil
	}
	if r.size-off-HeaderSize < n {
		return 0, 0, fmt.Sprintf("a torn record (%d of %d data bytes)", r.size-off-HeaderSize, n), nil
	}
	b, err := r.at(off, HeaderSize+n)
	if err != nil {
		return 0, 0, "", err
	}
	switch {
	case checksum(b[8:16], b[HeaderSize:]) != sum:
		return 0, 0, "a record whose CRC32C does not match", nil
	case seq <= prev:
		return 0, 0, fmt.Sprintf("seq %d out of order (after %d)", seq, prev), nil
	case seq > maxSeq:
		return 0, 0, fmt.Sprintf("seq %d, beyond any plausible seq", seq), nil
	}
	return n, seq, "", nil
}

// resync searches from off on for the next offset that holds a valid
// record with a seq above prev. It returns -1 when there is none, with
// gaveUp set when the search ran out of budget first.
func (r *segReader) resync(off int64, prev uint64, budget *int64) (next int64, gaveUp bool, err error) {
	for p := off; p+HeaderSize <= r.size; p++ {
		hdr, err := r.at(p, HeaderSize)
		if err != nil {
			return -1, false, err
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:]))
		seq := binary.LittleEndian.Uint64(hdr[8:])
		if n > MaxRecordBytes || r.size-p-HeaderSize < n || seq <= prev || seq > maxSeq {
			continue
		}
		if *budget < HeaderSize+n {
			return -1, true, nil
		}
		*budget -= HeaderSize + n
		if _, _, problem, err := r.record(p, prev); err != nil {
			return -1, false, err
		} else if problem == "" {
			return p, false, nil
		}
	}
	return -1, false, nil
}
