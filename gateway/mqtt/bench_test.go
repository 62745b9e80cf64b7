package mqtt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	mt "github.com/edgegate/edgegate/gateway/mqtt/mosquittotest"
	"github.com/edgegate/edgegate/gateway/spool"
	"github.com/edgegate/edgegate/protocol"
)

// fillBuffer writes n samples (seq 1..n, as a 100 Hz sensor takes them)
// into the bridge's buffer in dataDir, as if the broker had been away.
func fillBuffer(t testing.TB, dataDir string, n int) {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dataDir, dirName, "samples"), MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Duration(n) * 10 * time.Millisecond).UnixMilli()
	recs := make([]spool.Record, 0, 4096)
	for i := 1; i <= n; i++ {
		recs = append(recs, spool.Record{Seq: uint64(i), Data: protocol.AppendSample(nil, "wave.value", "", float64(i%1000)/1000, ts+int64(i)*10, uint64(i))})
		if len(recs) == cap(recs) || i == n {
			if err := sp.Append(recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
}

const drainYAML = "gateway: {id: bench}\nmqtt:\n  url: %s\n  discovery: false\n"

// drain starts a bridge on a buffer of n samples and returns how long the
// broker took to acknowledge them all, from the connection on, and how
// many a subscriber got meanwhile.
func drain(t testing.TB, br *mt.Broker, n int) (time.Duration, int) {
	t.Helper()
	data := t.TempDir()
	fillBuffer(t, data, n)
	w := br.Watch(t, "", "", "edgegate/bench/samples")
	r := startRigYAML(t, data, fmt.Sprintf(drainYAML, br.URL))
	deadline := time.Now().Add(5 * time.Minute)
	for r.bridge.Health().State != StateConnected {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	for r.bridge.Metrics().AckedSeq < uint64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("acked %d of %d", r.bridge.Metrics().AckedSeq, n)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	r.stop()
	time.Sleep(200 * time.Millisecond)
	return took, len(w.Seqs(t))
}

// TestCatchUpAfterOutage: a 60 s outage of a 100 Hz sensor (6000 samples)
// is published and acknowledged in under 5 s.
func TestCatchUpAfterOutage(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	took, got := drain(t, br, 6000)
	t.Logf("6000 samples caught up in %v (%.0f samples/s); the subscriber got %d", took, 6000/took.Seconds(), got)
	if took > 5*time.Second {
		t.Fatalf("catch-up took %v, want < 5 s", took)
	}
	if got != 6000 {
		t.Fatalf("the subscriber got %d distinct samples of 6000", got)
	}
}

// BenchmarkSamplesQoS1 is the sustained rate from the buffer to a local
// Mosquitto at QoS 1 (every batch acknowledged with PUBACK before the
// buffer is trimmed), with one subscriber getting them:
//
//	go test -run '^$' -bench SamplesQoS1 -benchtime 1x ./gateway/mqtt/
func BenchmarkSamplesQoS1(b *testing.B) {
	br := mt.Start(b, mt.Options{})
	const n = 300000
	var total time.Duration
	got := 0
	for range b.N {
		took, g := drain(b, br, n)
		total += took
		got += g
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "samples/s")
	b.ReportMetric(float64(got)/float64(n*b.N), "delivered/published")
}

// TestThroughput: at least 20,000 samples/s from the buffer at QoS 1.
func TestThroughput(t *testing.T) {
	br := mt.Start(t, mt.Options{})
	const n = 100000
	took, got := drain(t, br, n)
	rate := n / took.Seconds()
	t.Logf("%d samples in %v: %.0f samples/s; the subscriber got %d", n, took, rate, got)
	if rate < 20000 {
		t.Fatalf("%.0f samples/s, want ≥ 20,000", rate)
	}
}
