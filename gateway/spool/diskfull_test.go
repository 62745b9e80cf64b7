package spool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fullDisk is a write hook that fails like a full file system while full
// is set, after writing part of the buffer when partial is set.
type fullDisk struct {
	full, partial atomic.Bool
	refused       atomic.Int64
}

func (d *fullDisk) write(f *os.File, b []byte) (int, error) {
	if !d.full.Load() {
		return f.Write(b)
	}
	d.refused.Add(1)
	if d.partial.Load() && len(b) > 1 {
		n, _ := f.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readFrom reads every readable record after after, without checking
// the data (the tests here use their own).
func readFrom(t *testing.T, s *Spool, after uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		recs, err := s.Read(after, 100, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return seqs
		}
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
			after = r.Seq
		}
	}
}

// TestWriteErrorDropsCountsAndRecovers runs the disk-full path with an
// injected ENOSPC, so that it runs everywhere: samples wait in memory up
// to MaxPending, the oldest beyond that are dropped and counted, Stats says
// why, the error is logged once (not once per sample or retry), and once
// the disk takes writes again the spool catches up by itself.
func TestWriteErrorDropsCountsAndRecovers(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			dir := t.TempDir()
			disk := &fullDisk{}
			disk.partial.Store(partial)
			s, lb := open(t, Options{Dir: dir, Fsync: FsyncBatch, SyncInterval: 10 * time.Millisecond, MaxPending: 50, write: disk.write})
			for q := uint64(1); q <= 10; q++ {
				s.Add(q, payload(q))
			}
			waitFor(t, "the first records", func() bool { return s.Stats().DurableSeq == 10 })

			disk.full.Store(true)
			for q := uint64(11); q <= 200; q++ {
				s.Add(q, payload(q))
				if q == 11 {
					waitFor(t, "a refused write", func() bool { return s.Stats().Error != "" })
				}
			}
			// A retry may be in flight (it takes the pending records out
			// while it tries): on a slow machine (qemu) the 190 Adds can
			// outlast the one-second retry interval. Wait for it to put
			// them back.
			var st Stats
			waitFor(t, "the pending records back from a retry", func() bool {
				st = s.Stats()
				return st.Dropped+uint64(st.Pending) == 190
			})
			if !strings.Contains(st.Error, "no space left on device") || !strings.Contains(st.Error, "free space") {
				t.Fatalf("Stats.Error %q: want the cause and what to do", st.Error)
			}
			if st.Dropped != 140 || st.Pending != 50 || st.LastSeq != 200 || st.DurableSeq != 10 {
				t.Fatalf("while the disk is full: %+v; want 140 dropped, 50 waiting", st)
			}
			if n := disk.refused.Load(); n > 5 {
				t.Fatalf("%d writes tried in a short outage: each Add must not retry", n)
			}
			if n := strings.Count(lb.String(), "cannot write the buffer"); n != 1 {
				t.Fatalf("the error was logged %d times, want once:\n%s", n, lb.String())
			}

			disk.full.Store(false)
			waitFor(t, "the spool to write again", func() bool { return s.Stats().DurableSeq == 200 })
			st = s.Stats()
			if st.Error != "" || st.Pending != 0 {
				t.Fatalf("after space returned: %+v", st)
			}
			got := readAll(t, s, 0)
			if len(got) != 60 || got[9] != 10 || got[10] != 151 || got[59] != 200 {
				t.Fatalf("read %v: want 1…10 then the newest 50, 151…200", got)
			}
			if !strings.Contains(lb.String(), "writing to the buffer again") {
				t.Fatalf("no log line about the recovery:\n%s", lb.String())
			}
			// A partial write was cut away: the segment is sound.
			s.Close()
			s2, _ := open(t, Options{Dir: dir})
			if st := s2.Stats(); st.Recovered != 0 || st.LastSeq != 200 {
				t.Fatalf("reopen: %+v", st)
			}
		})
	}
}

// TestAppendErrorIsReturned: Append, the synchronous path, reports the
// error and keeps nothing of the failed batch.
func TestAppendErrorIsReturned(t *testing.T) {
	disk := &fullDisk{}
	disk.partial.Store(true)
	s, _ := open(t, Options{Dir: t.TempDir(), Fsync: FsyncAlways, write: disk.write})
	appendRange(t, s, 1, 5)
	disk.full.Store(true)
	err := s.Append([]Record{{Seq: 6, Data: payload(6)}, {Seq: 7, Data: payload(7)}})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	disk.full.Store(false)
	appendRange(t, s, 6, 9)
	wantRange(t, readAll(t, s, 0), 1, 9)
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test when this process may not mount.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s; TestWriteErrorDropsCountsAndRecovers covers the path with an injected error", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestDiskFullTmpfs fills a real, small file system: the spool reports
// ENOSPC, drops and counts what it cannot hold, and resumes by itself
// when space is freed.
func TestDiskFullTmpfs(t *testing.T) {
	mnt := mountTmpfs(t, 64<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 32<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	s, lb := open(t, Options{Dir: filepath.Join(mnt, "uplink"), Fsync: FsyncBatch, SyncInterval: 10 * time.Millisecond, MaxPending: 100})
	var q uint64
	for s.Stats().Error == "" {
		if q > 10000 {
			t.Fatalf("wrote %d records into a 64 KiB file system: %+v", q, s.Stats())
		}
		q++
		s.Add(q, payload(q))
		if q%50 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for end := q + 300; q < end; q++ {
		s.Add(q+1, payload(q+1))
	}
	st := s.Stats()
	if !strings.Contains(st.Error, "no space left on device") || st.Dropped == 0 {
		t.Fatalf("on a full tmpfs: %+v", st)
	}
	if !strings.Contains(lb.String(), "file system is full") {
		t.Fatalf("no log line saying the file system is full:\n%s", lb.String())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spool to write again", func() bool { st := s.Stats(); return st.Error == "" && st.DurableSeq == q })
	got := readFrom(t, s, 0)
	if got[len(got)-1] != q || uint64(len(got))+s.Stats().Dropped != q {
		t.Fatalf("read %d records ending %d, dropped %d, of %d", len(got), got[len(got)-1], s.Stats().Dropped, q)
	}
}

// TestOpenOnFullDisk: a gateway started while its disk is full opens its
// buffer (recovery needs no space), reports the error at the first write
// and writes once space returns.
func TestOpenOnFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, 64<<10)
	dir := spoolIn(t, filepath.Join(mnt, "uplink"), 20)
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	s2, _ := open(t, Options{Dir: dir, Fsync: FsyncBatch, SyncInterval: 10 * time.Millisecond})
	if s2.LastSeq() != 20 {
		t.Fatalf("LastSeq %d after opening on a full disk", s2.LastSeq())
	}
	for q := uint64(21); q <= 200; q++ { // more than the last page's room
		s2.Add(q, payload(q))
	}
	waitFor(t, "the error", func() bool { return strings.Contains(s2.Stats().Error, "no space left") })
	os.Remove(filler)
	waitFor(t, "the write", func() bool { return s2.Stats().DurableSeq == 200 })
	wantRange(t, readAll(t, s2, 0), 1, 200)
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for err == nil {
		_, err = f.Write(make([]byte, 4096))
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the file system: %v", err)
	}
}

// TestCorruptSegmentOnFullDisk: with no room to rewrite a segment without
// its corrupt record, Open still succeeds and keeps the records before it.
func TestCorruptSegmentOnFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, 64<<10)
	dir := spoolIn(t, filepath.Join(mnt, "uplink"), 50)
	seg := segFiles(t, dir)[0]
	b, _ := os.ReadFile(seg)
	b[recordOffset(b, 9)+HeaderSize+2] ^= 1 // record 10
	os.WriteFile(seg, b, 0o640)
	fill(t, filepath.Join(mnt, "filler"))
	s2, lb := open(t, Options{Dir: dir, Fsync: FsyncNever})
	wantRange(t, readAll(t, s2, 0), 1, 9)
	if st := s2.Stats(); st.Corrupt != 1 || st.Recovered != 41 {
		t.Fatalf("stats %+v: want 1 corrupt, 41 cut", st)
	}
	if !strings.Contains(lb.String(), "cannot rewrite a segment") {
		t.Fatalf("no log line about the failed rewrite:\n%s", lb.String())
	}
}
