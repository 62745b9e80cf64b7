package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// segName is the file name of a segment whose first seq is first.
func segName(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", first, segSuffix))
}

// recordOffset is where the i-th record (from 0) of segment content b starts.
func recordOffset(b []byte, i int) int {
	off := 0
	for ; i > 0; i-- {
		off += HeaderSize + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return off
}

// spoolOf is a spool directory holding records 1…last, closed.
func spoolOf(t *testing.T, last uint64) string {
	t.Helper()
	return spoolIn(t, t.TempDir(), last)
}

// spoolIn writes records 1…last to a spool in dir and closes it.
func spoolIn(t *testing.T, dir string, last uint64) string {
	t.Helper()
	s, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
	appendRange(t, s, 1, last)
	s.Close()
	return dir
}

// TestCorruptRecordKeepsTheRest is finding 8 of issue 19: one flipped byte
// in the middle of a segment used to cut away every record after it. Now
// the damaged record is skipped (logged, counted) and the rest kept, in a
// sealed segment as in the newest one, whatever field the byte is in.
func TestCorruptRecordKeepsTheRest(t *testing.T) {
	recLen := HeaderSize + len(payload(100))
	for _, tc := range []struct {
		name  string
		field int // byte within the 16th record
		seg   int // which segment file
	}{
		{"data", HeaderSize + 20, 0},
		{"length", 2, 0},
		{"length, low byte", 0, 0},
		{"seq", 12, 0},
		{"data, sealed segment", HeaderSize + 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			segBytes := int64(1 << 20)
			if tc.seg > 0 {
				segBytes = int64(40 * recLen) // 40 records a segment
			}
			s, _ := open(t, Options{Dir: dir, Fsync: FsyncNever, SegmentBytes: segBytes})
			appendRange(t, s, 1, 120)
			s.Ack(10)
			s.Close()
			files := segFiles(t, dir)
			b, _ := os.ReadFile(files[tc.seg])
			base := binary.LittleEndian.Uint64(b[8:]) - 1 // seqs before this segment
			b[recordOffset(b, 15)+tc.field] ^= 0x40       // the 16th record of the segment
			os.WriteFile(files[tc.seg], b, 0o640)

			s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever, SegmentBytes: segBytes})
			bad := base + 16
			var want []uint64
			for q := uint64(11); q <= 120; q++ {
				if q != bad {
					want = append(want, q)
				}
			}
			if got := readAll(t, s2, 10); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read %v\nwant %v", got, want)
			}
			if st := s2.Stats(); st.Corrupt != 1 || st.Recovered != 1 || st.LastSeq != 120 {
				t.Fatalf("stats %+v: want 1 corrupt record, last seq 120", st)
			}
			if !strings.Contains(lb.String(), "skipping a corrupt record") || !strings.Contains(lb.String(), "the records after it are kept") {
				t.Fatalf("no log line about the corrupt record:\n%s", lb.String())
			}
			// The segment was rewritten without it: the next Open finds
			// nothing wrong, and appending goes on.
			appendRange(t, s2, 121, 130)
			s2.Close()
			s3, lb3 := open(t, Options{Dir: dir, Fsync: FsyncNever, SegmentBytes: segBytes})
			if st := s3.Stats(); st.Recovered != 0 || st.Corrupt != 0 {
				t.Fatalf("second open: %+v\n%s", st, lb3.String())
			}
			got := readAll(t, s3, 10)
			if len(got) != len(want)+10 || got[len(got)-1] != 130 {
				t.Fatalf("after the rewrite and more appends: %v", got)
			}
		})
	}
}

// TestCorruptRunOfRecords damages several records in a row and then some
// garbage past them: everything intact is kept.
func TestCorruptRunOfRecords(t *testing.T) {
	dir := spoolOf(t, 50)
	seg := segFiles(t, dir)[0]
	b, _ := os.ReadFile(seg)
	from, to := recordOffset(b, 10)+5, recordOffset(b, 14)+7
	for i := from; i < to; i++ { // records 11…15 damaged
		b[i] = 0xA5
	}
	os.WriteFile(seg, b, 0o640)
	s2, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
	got := readAll(t, s2, 0)
	if len(got) != 45 || got[9] != 10 || got[10] != 16 || got[44] != 50 {
		t.Fatalf("read %v", got)
	}
	if st := s2.Stats(); st.Corrupt != 1 {
		t.Fatalf("one damaged stretch, counted once: %+v", st)
	}
}

// TestAckedBeyondLastSeq: an acked file that claims more than is stored
// (2^64-1 in the probe) used to discard the whole backlog silently and make
// the hub's seq wrap. Now it is not believed: a warning, the buffer is
// resent, numbering continues after the last stored seq.
func TestAckedBeyondLastSeq(t *testing.T) {
	for _, content := range []string{"18446744073709551615\n", "4611686018427387905", "1000\n", "12abc", ""} {
		t.Run(fmt.Sprintf("%q", content), func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
			appendRange(t, s, 1, 50)
			s.Ack(20)
			s.Close()
			os.WriteFile(filepath.Join(dir, ackedFile), []byte(content), 0o640)
			s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
			st := s2.Stats()
			if st.LastSeq != 50 || s2.LastSeq() != 50 {
				t.Fatalf("LastSeq %d, want 50: %+v", s2.LastSeq(), st)
			}
			if st.AckedSeq != 0 || st.Depth != 50 {
				t.Fatalf("stats %+v: want everything stored unacknowledged", st)
			}
			wantRange(t, readAll(t, s2, st.AckedSeq), 1, 50)
			if !strings.Contains(lb.String(), "acked seq") || !strings.Contains(lb.String(), "resent") {
				t.Fatalf("no warning about the acked seq:\n%s", lb.String())
			}
			appendRange(t, s2, 51, 51)
			if got := readAll(t, s2, 50); len(got) != 1 || got[0] != 51 {
				t.Fatalf("after the clamp, appending 51: %v", got)
			}
		})
	}
}

// TestSegmentNamedBeyondItsRecords: a segment named 2^64-1 that holds
// seqs 1…50 used to be emptied (its records "out of order") and make
// LastSeq 2^64-2. Now its name is clamped and the file renamed.
func TestSegmentNamedBeyondItsRecords(t *testing.T) {
	dir := spoolOf(t, 50)
	huge := filepath.Join(dir, "18446744073709551615.seg")
	if err := os.Rename(segFiles(t, dir)[0], huge); err != nil {
		t.Fatal(err)
	}
	s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
	if s2.LastSeq() != 50 {
		t.Fatalf("LastSeq %d, want 50", s2.LastSeq())
	}
	wantRange(t, readAll(t, s2, 0), 1, 50)
	if !strings.Contains(lb.String(), "name does not match") {
		t.Fatalf("no warning about the name:\n%s", lb.String())
	}
	if files := segFiles(t, dir); len(files) != 1 || files[0] != segName(dir, 1) {
		t.Fatalf("segments after the clamp: %v", files)
	}
	appendRange(t, s2, 51, 60)
	wantRange(t, readAll(t, s2, 0), 1, 60)
	s2.Close()
	s3, lb3 := open(t, Options{Dir: dir, Fsync: FsyncNever})
	if s3.LastSeq() != 60 || strings.Contains(lb3.String(), "WARN") {
		t.Fatalf("reopen: LastSeq %d\n%s", s3.LastSeq(), lb3.String())
	}
}

// TestEmptyNewestSegmentNamedBeyond: an empty newest segment may be named
// one past the last stored seq, not more.
func TestEmptyNewestSegmentNamedBeyond(t *testing.T) {
	dir := spoolOf(t, 50)
	os.WriteFile(filepath.Join(dir, "18446744073709551615.seg"), nil, 0o640)
	s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
	if s2.LastSeq() != 50 {
		t.Fatalf("LastSeq %d, want 50\n%s", s2.LastSeq(), lb.String())
	}
	appendRange(t, s2, 51, 52)
	wantRange(t, readAll(t, s2, 0), 1, 52)
	if _, err := os.Stat(segName(dir, 51)); err != nil {
		t.Fatalf("the empty segment was not renamed to 51: %v", segFiles(t, dir))
	}
}

// TestNothingStoredGarbageNumbering: with every record acknowledged and
// trimmed, the acked file and the newest segment's name carry the
// numbering. Values no real run can reach are not believed.
func TestNothingStoredGarbageNumbering(t *testing.T) {
	for _, tc := range []struct {
		name, acked string
		seg         uint64
		want        uint64
	}{
		{"both huge", "18446744073709551615", 1<<64 - 1, 0},
		{"huge name, good acked", "70\n", 1<<64 - 1, 70},
		{"huge acked, good name", "18446744073709551615", 71, 70},
		{"good, acked ahead of the name", "90", 71, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ackedFile), []byte(tc.acked), 0o640)
			os.WriteFile(segName(dir, tc.seg), nil, 0o640)
			s, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
			if s.LastSeq() != tc.want {
				t.Fatalf("LastSeq %d, want %d\n%s", s.LastSeq(), tc.want, lb.String())
			}
			appendRange(t, s, tc.want+1, tc.want+3)
			wantRange(t, readAll(t, s, tc.want), tc.want+1, tc.want+3)
			s.Close()
			s2, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
			if s2.LastSeq() != tc.want+3 {
				t.Fatalf("reopen: LastSeq %d, want %d", s2.LastSeq(), tc.want+3)
			}
		})
	}
}

// fuzzPayload is a record's data, of a length that varies with seq.
func fuzzPayload(seq uint64) []byte {
	return fmt.Appendf(nil, `{"sensor":"s","value":%d,"seq":%d,"pad":"%s"}`, seq*7, seq, strings.Repeat("x", int(seq%23)))
}

// FuzzRecover writes real segments with the spool, damages them (bits
// flipped in runs anywhere, a file cut short) and reopens: Open never fails
// or panics, every record Read returns is one that was written, and every
// intact unacknowledged record (one whose bytes the damage did not touch)
// is still there, twice over (the second Open finds nothing to repair).
func FuzzRecover(f *testing.F) {
	f.Add(uint8(40), uint8(10), []byte{0, 200, 0, 0x40, 0}, uint16(0))
	f.Add(uint8(60), uint8(0), []byte{1, 5, 0, 0xff, 3, 2, 90, 1, 1, 0, 0, 3, 0, 0x80, 7}, uint16(0))
	f.Add(uint8(30), uint8(29), []byte{}, uint16(77))
	f.Add(uint8(90), uint8(5), []byte{0, 0, 0, 0x01, 0, 0, 16, 0, 0x10, 2}, uint16(1<<12|300))
	f.Fuzz(func(t *testing.T, n, ack uint8, patches []byte, cut uint16) {
		last := uint64(n%120) + 1
		acked := uint64(ack) % (last + 1)
		dir := t.TempDir()
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		opts := Options{Dir: dir, Fsync: FsyncNever, SegmentBytes: 700, Logger: quiet}
		s, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		var recs []Record
		for q := uint64(1); q <= last; q++ {
			recs = append(recs, Record{Seq: q, Data: fuzzPayload(q)})
		}
		if err := s.Append(recs); err != nil {
			t.Fatal(err)
		}
		s.Ack(acked)
		s.Close()

		// Where each record is, then the damage.
		files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		type place struct {
			file     int
			off, end int
			seq      uint64
		}
		var places []place
		contents := make([][]byte, len(files))
		for i, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			contents[i] = b
			for off := 0; off+HeaderSize <= len(b); {
				end := off + HeaderSize + int(binary.LittleEndian.Uint32(b[off:]))
				places = append(places, place{i, off, end, binary.LittleEndian.Uint64(b[off+8:])})
				off = end
			}
		}
		orig := make([][]byte, len(files))
		for i := range contents {
			orig[i] = bytes.Clone(contents[i])
		}
		for ; len(patches) >= 5; patches = patches[5:] {
			fi := int(patches[0]) % len(files)
			b := contents[fi]
			if len(b) == 0 {
				continue
			}
			at := int(binary.LittleEndian.Uint16(patches[1:]))
			for k := 0; k <= int(patches[4]%8); k++ {
				b[(at+k)%len(b)] ^= patches[3]
			}
		}
		if cut != 0 {
			fi := int(cut>>12) % len(files)
			contents[fi] = contents[fi][:int(cut&0xfff)%(len(contents[fi])+1)]
		}
		intact := map[uint64]bool{}
		for _, p := range places {
			b := contents[p.file]
			if p.seq > acked && p.end <= len(b) && bytes.Equal(b[p.off:p.end], orig[p.file][p.off:p.end]) {
				intact[p.seq] = true
			}
		}
		for i, name := range files {
			if err := os.WriteFile(name, contents[i], 0o640); err != nil {
				t.Fatal(err)
			}
		}

		check := func(round int) {
			s, err := Open(opts)
			if err != nil {
				t.Fatalf("open %d: %v", round, err)
			}
			defer s.Close()
			st := s.Stats()
			if round == 2 && st.Recovered != 0 {
				t.Fatalf("the second open repaired again: %+v", st)
			}
			got := map[uint64]bool{}
			var after uint64
			for {
				rs, err := s.Read(after, 50, 4096)
				if err != nil {
					t.Fatalf("open %d: read: %v", round, err)
				}
				if len(rs) == 0 {
					break
				}
				for _, r := range rs {
					if r.Seq <= after || r.Seq > last || !bytes.Equal(r.Data, fuzzPayload(r.Seq)) {
						t.Fatalf("open %d: read seq %d (after %d) holding %q: not a record that was written", round, r.Seq, after, r.Data)
					}
					got[r.Seq] = true
					after = r.Seq
				}
			}
			var top uint64
			for q := range intact {
				if !got[q] {
					t.Fatalf("open %d: intact unacknowledged record %d lost (acked %d, stats %+v)", round, q, acked, st)
				}
				top = max(top, q)
			}
			if ls := s.LastSeq(); ls > last || ls < top {
				t.Fatalf("open %d: LastSeq %d, want %d…%d", round, ls, top, last)
			}
		}
		check(1)
		check(2)
	})
}
