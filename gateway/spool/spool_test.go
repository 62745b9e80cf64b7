package spool

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects log output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func open(t testing.TB, o Options) (*Spool, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	o.Logger = slog.New(slog.NewTextHandler(lb, nil))
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

func payload(seq uint64) []byte {
	return fmt.Appendf(nil, `{"sensor":"wave.value","value":0.5,"ts":1732450000123,"seq":%d}`, seq)
}

func appendRange(t testing.TB, s *Spool, from, to uint64) {
	t.Helper()
	var recs []Record
	for q := from; q <= to; q++ {
		recs = append(recs, Record{Seq: q, Data: payload(q)})
	}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every readable record after after, checking the data.
func readAll(t testing.TB, s *Spool, after uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		recs, err := s.Read(after, 100, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return seqs
		}
		for _, r := range recs {
			if !bytes.Equal(r.Data, payload(r.Seq)) {
				t.Fatalf("record %d holds %q", r.Seq, r.Data)
			}
			seqs = append(seqs, r.Seq)
			after = r.Seq
		}
	}
}

func wantRange(t *testing.T, got []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(got)) != to-from+1 || (len(got) > 0 && (got[0] != from || got[len(got)-1] != to)) {
		t.Fatalf("got %d records %v…, want %d…%d", len(got), head(got), from, to)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("gap: %d then %d", got[i-1], got[i])
		}
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	sort.Strings(m)
	return m
}

func TestAppendReadAckReopen(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir, Fsync: FsyncAlways, SegmentBytes: 1024})
	appendRange(t, s, 1, 100)
	wantRange(t, readAll(t, s, 0), 1, 100)
	wantRange(t, readAll(t, s, 40), 41, 100)
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("%d segments, want several of 1 KiB", n)
	}
	s.Ack(60)
	st := s.Stats()
	if st.AckedSeq != 60 || st.Depth != 40 || st.LastSeq != 100 {
		t.Fatalf("stats after ack: %+v", st)
	}
	// Segments holding only acknowledged records are gone; the rest stay.
	files := segFiles(t, dir)
	var firsts []uint64
	for _, f := range files {
		var first uint64
		fmt.Sscanf(filepath.Base(f), "%d.seg", &first)
		firsts = append(firsts, first)
	}
	if len(firsts) < 2 || firsts[0] > 61 || firsts[1] <= 61 {
		t.Fatalf("segments after ack 60 start at %v: want the one holding 61 first, none older", firsts)
	}
	wantRange(t, readAll(t, s, 60), 61, 100)
	s.Close()

	s2, _ := open(t, Options{Dir: dir, Fsync: FsyncAlways, SegmentBytes: 1024})
	if s2.LastSeq() != 100 {
		t.Fatalf("LastSeq after reopen %d, want 100", s2.LastSeq())
	}
	if st := s2.Stats(); st.AckedSeq != 60 {
		t.Fatalf("acked seq not kept across reopen: %+v", st)
	}
	appendRange(t, s2, 101, 120)
	wantRange(t, readAll(t, s2, 60), 61, 120)
	// everything acknowledged and trimmed: numbering still continues
	s2.Ack(120)
	appendRange(t, s2, 121, 200)
	s2.Ack(200)
	s2.Close()
	s3, _ := open(t, Options{Dir: dir, Fsync: FsyncAlways, SegmentBytes: 1024})
	if s3.LastSeq() != 200 || s3.Stats().Depth != 0 {
		t.Fatalf("after a full ack: LastSeq %d, %+v", s3.LastSeq(), s3.Stats())
	}
}

// TestTornLastRecord cuts the newest segment at every byte offset inside
// its last record: Open must keep every earlier record, log the cut,
// truncate it away, and continue numbering after the last whole record.
func TestTornLastRecord(t *testing.T) {
	src := t.TempDir()
	s, _ := open(t, Options{Dir: src, Fsync: FsyncNever})
	appendRange(t, s, 1, 10)
	s.Close()
	files := segFiles(t, src)
	if len(files) != 1 {
		t.Fatalf("segments %v", files)
	}
	whole, _ := os.ReadFile(files[0])
	lastLen := HeaderSize + len(payload(10))
	lastStart := len(whole) - lastLen
	for cut := lastStart; cut < len(whole); cut++ {
		t.Run(fmt.Sprint(cut-lastStart), func(t *testing.T) {
			dir := t.TempDir()
			seg := filepath.Join(dir, filepath.Base(files[0]))
			os.WriteFile(seg, whole[:cut], 0o640)
			s, lb := open(t, Options{Dir: dir, Fsync: FsyncBatch})
			wantRange(t, readAll(t, s, 0), 1, 9)
			if s.LastSeq() != 9 {
				t.Fatalf("LastSeq %d, want 9", s.LastSeq())
			}
			torn := cut > lastStart
			if got := strings.Contains(lb.String(), "torn record"); got != torn {
				t.Fatalf("log mentions a torn record: %v, want %v:\n%s", got, torn, lb.String())
			}
			if fi, _ := os.Stat(seg); fi.Size() != int64(lastStart) {
				t.Fatalf("segment is %d bytes after recovery, want %d", fi.Size(), lastStart)
			}
			appendRange(t, s, 10, 12)
			s.Sync()
			wantRange(t, readAll(t, s, 0), 1, 12)
		})
	}
}

// TestCRCMismatch flips one bit in a segment of ten records. A damaged
// last record is a torn write (cut); any other damaged record is skipped,
// counted as corrupt, and the records after it are kept.
func TestCRCMismatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offset  func(size, recLen int) int // byte to flip
		lost    uint64                     // the one record lost
		corrupt uint64
	}{
		{"data of the last record", func(size, n int) int { return size - 3 }, 10, 0},
		{"seq of the 8th record", func(size, n int) int { return 7*n + 9 }, 8, 1},
		{"checksum of the first record", func(size, n int) int { return 5 }, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
			appendRange(t, s, 1, 10)
			s.Close()
			seg := segFiles(t, dir)[0]
			b, _ := os.ReadFile(seg)
			b[tc.offset(len(b), HeaderSize+len(payload(1)))] ^= 0x40
			os.WriteFile(seg, b, 0o640)
			s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
			got := readAll(t, s2, 0)
			var want []uint64
			for q := uint64(1); q <= 10; q++ {
				if q != tc.lost {
					want = append(want, q)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read %v, want %v", got, want)
			}
			if !strings.Contains(lb.String(), "CRC32C does not match") {
				t.Fatalf("no log line about the checksum:\n%s", lb.String())
			}
			if st := s2.Stats(); st.Recovered != 1 || st.Corrupt != tc.corrupt {
				t.Fatalf("stats %+v, want 1 recovered, %d corrupt", st, tc.corrupt)
			}
		})
	}
}

func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 8 << 10
	s, lb := open(t, Options{Dir: dir, Fsync: FsyncNever, MaxBytes: maxBytes, SegmentBytes: 1 << 10})
	for q := uint64(1); q <= 1000; q += 10 {
		appendRange(t, s, q, q+9)
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Bytes > maxBytes {
		t.Fatalf("stats %+v: want drops and at most %d bytes", st, maxBytes)
	}
	got := readAll(t, s, 0)
	// The oldest went, exactly as many as counted; the rest is intact.
	wantRange(t, got, st.Dropped+1, 1000)
	if st.Depth != uint64(len(got)) {
		t.Fatalf("depth %d, read %d", st.Depth, len(got))
	}
	if !strings.Contains(lb.String(), "buffer full") {
		t.Fatalf("no log line about dropping:\n%s", lb.String())
	}
	// Acknowledged records are not counted as dropped.
	dir2 := t.TempDir()
	s2, _ := open(t, Options{Dir: dir2, Fsync: FsyncNever, MaxBytes: maxBytes, SegmentBytes: 1 << 10})
	for q := uint64(1); q <= 1000; q += 10 {
		appendRange(t, s2, q, q+9)
		s2.Ack(q + 9)
	}
	if st := s2.Stats(); st.Dropped != 0 || st.Depth != 0 {
		t.Fatalf("acked spool: %+v", st)
	}
}

func TestBatchRecordsReadableOnlyWhenSynced(t *testing.T) {
	s, _ := open(t, Options{Dir: t.TempDir(), Fsync: FsyncBatch, SyncInterval: time.Hour})
	appendRange(t, s, 1, 5)
	if got := readAll(t, s, 0); len(got) != 0 {
		t.Fatalf("read %v before the batch fsync", got)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	wantRange(t, readAll(t, s, 0), 1, 5)
}

func TestAddWritesInBackground(t *testing.T) {
	for _, policy := range []Fsync{FsyncAlways, FsyncBatch, FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			s, _ := open(t, Options{Dir: t.TempDir(), Fsync: policy, SyncInterval: 10 * time.Millisecond})
			for q := uint64(1); q <= 500; q++ {
				s.Add(q, payload(q))
			}
			s.Add(3, payload(3)) // out of order: ignored
			var got []uint64
			deadline := time.After(10 * time.Second)
			for len(got) < 500 {
				select {
				case <-s.Notify():
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Fatalf("only %d of 500 records readable", len(got))
				}
				after := uint64(0)
				if len(got) > 0 {
					after = got[len(got)-1]
				}
				got = append(got, readAll(t, s, after)...)
			}
			wantRange(t, got, 1, 500)
		})
	}
}

func TestPendingBound(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir, Fsync: FsyncNever, MaxPending: 10})
	// Hold the writer off the disk by holding the spool's lock.
	s.mu.Lock()
	for q := uint64(1); q <= 25; q++ {
		s.Add(q, payload(q))
	}
	s.mu.Unlock()
	s.Close()
	dropped := s.Stats().Dropped
	s2, _ := open(t, Options{Dir: dir, Fsync: FsyncNever})
	got := readAll(t, s2, 0)
	// The writer may have taken a first batch before the lock; of the
	// rest, at most 10 waited and the others were dropped and counted.
	if dropped == 0 || uint64(len(got))+dropped != 25 || got[len(got)-1] != 25 {
		t.Fatalf("read %v, dropped %d", got, dropped)
	}
}

func TestParseFsync(t *testing.T) {
	for in, want := range map[string]Fsync{"always": FsyncAlways, "batch": FsyncBatch, "never": FsyncNever, "": FsyncBatch} {
		if got, err := ParseFsync(in); err != nil || got != want {
			t.Fatalf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseFsync("sometimes"); err == nil {
		t.Fatal("sometimes accepted")
	}
}

// BenchmarkAppendAck measures sustained throughput of the buffer: a
// producer appends batches of 50 records (half a second of a 100 Hz
// sensor, or 50 ms of ten of them) while a consumer reads what is
// durable and acknowledges it, as the uplink does.
func BenchmarkAppendAck(b *testing.B) {
	for _, policy := range []Fsync{FsyncAlways, FsyncBatch, FsyncNever} {
		b.Run(policy.String(), func(b *testing.B) {
			s, _ := open(b, Options{Dir: b.TempDir(), Fsync: policy, MaxBytes: 1 << 30})
			data := payload(123456789)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			const batch = 50
			recs := make([]Record, batch)
			done := make(chan uint64)
			var total uint64
			stop := make(chan struct{})
			go func() {
				var after uint64
				for {
					recs, err := s.Read(after, 1000, 64<<10)
					if err != nil {
						b.Error(err)
						return
					}
					if len(recs) == 0 {
						select {
						case <-s.Notify():
						case <-stop:
							done <- after
							return
						}
						continue
					}
					after = recs[len(recs)-1].Seq
					s.Ack(after)
				}
			}()
			var seq uint64
			for b.Loop() {
				seq++
				recs[(seq-1)%batch] = Record{Seq: seq, Data: data}
				if seq%batch == 0 {
					if err := s.Append(recs); err != nil {
						b.Fatal(err)
					}
				}
			}
			total = seq - seq%batch
			s.Sync()
			for s.Stats().AckedSeq < total {
				time.Sleep(time.Millisecond)
			}
			close(stop)
			<-done
			if st := s.Stats(); st.Dropped != 0 {
				b.Fatalf("dropped %d", st.Dropped)
			}
		})
	}
}

// BenchmarkAdd is the sampler's path into the buffer: Add copies the
// record into memory and the writer goroutine writes it (its allocations,
// amortised, count here too).
func BenchmarkAdd(b *testing.B) {
	s, _ := open(b, Options{Dir: b.TempDir(), Fsync: FsyncNever, MaxBytes: 1 << 30})
	data := payload(123456789)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		s.Add(seq, data)
	}
}
