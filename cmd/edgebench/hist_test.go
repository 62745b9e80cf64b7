package main

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// Every value maps to a bucket whose bounds contain it, buckets are
// contiguous and increasing, and a bucket is never wider than the
// promised relative precision.
func TestHistBucketsCoverEveryValue(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (gap or overlap)", i, lo, prevHi+1)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histHalf+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d of its values", i, lo, hi, histHalf)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if prevHi != histMax {
		t.Fatalf("last bucket ends at %d, want histMax %d", prevHi, histMax)
	}
}

func TestHistQuantilesAgainstSortedValues(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) int64
	}{
		{"uniform µs", func(r *rand.Rand) int64 { return 1000 + r.Int64N(99000) }},
		{"exponential", func(r *rand.Rand) int64 { return int64(r.ExpFloat64() * 50e3) }},
		{"bimodal", func(r *rand.Rand) int64 {
			if r.IntN(100) == 0 {
				return 5e6 + r.Int64N(1e6)
			}
			return 20e3 + r.Int64N(2e3)
		}},
		{"small exact", func(r *rand.Rand) int64 { return r.Int64N(histSub) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Hist
			vals := make([]int64, 20000)
			for i := range vals {
				vals[i] = c.gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
				exact := vals[int(float64(len(vals))*q+0.999999)-1]
				got := h.Quantile(q)
				// Never below the exact value, and within one bucket above it.
				if got < exact || float64(got-exact) > float64(exact)/histHalf+1 {
					t.Errorf("q%.3f = %d, exact %d: outside [exact, exact·(1+1/%d)]", q, got, exact, histHalf)
				}
			}
			if h.Quantile(1) != vals[len(vals)-1] || h.max != vals[len(vals)-1] {
				t.Errorf("max = %d / q1 = %d, want %d", h.max, h.Quantile(1), vals[len(vals)-1])
			}
			if h.Quantile(0) != vals[0] || h.min != vals[0] {
				t.Errorf("min = %d / q0 = %d, want %d", h.min, h.Quantile(0), vals[0])
			}
			if h.Count() != uint64(len(vals)) {
				t.Errorf("count = %d, want %d", h.Count(), len(vals))
			}
		})
	}
}

func TestHistEdgeValues(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 || h.CDF() != nil || h.Mean() != 0 || h.Distribution() != nil {
		t.Fatal("empty histogram must report zeros and no points")
	}
	h.Record(-5)           // a clock step backwards counts as 0
	h.Record(histMax * 10) // beyond the tracked range: last bucket, exact max
	if h.min != 0 || h.max != histMax*10 {
		t.Fatalf("min/max = %d/%d, want 0/%d", h.min, h.max, histMax*10)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Fatalf("p50 = %d, want 0", got)
	}
	if got := h.Quantile(0.99); got != histMax*10 {
		t.Fatalf("p99 = %d, want the clamped max %d", got, histMax*10)
	}
}

func TestHistMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all Hist
	for i := 0; i < 5000; i++ {
		v := int64(r.ExpFloat64() * 1e5)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Hist
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Hist{}) // merging an empty one changes nothing
	if m.Summarize() != all.Summarize() {
		t.Fatalf("merged %+v\nwant   %+v", m.Summarize(), all.Summarize())
	}
	if m.counts != all.counts {
		t.Fatal("merged bucket counts differ")
	}
}

func TestHistCDFAndDistribution(t *testing.T) {
	var h Hist
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1000)
	}
	cdf := h.CDF()
	if len(cdf) == 0 || cdf[len(cdf)-1].Fraction != 1 || cdf[len(cdf)-1].Value != h.max {
		t.Fatalf("CDF must end at (max, 1): %v", cdf[len(cdf)-1])
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].Value <= cdf[i-1].Value || cdf[i].Fraction <= cdf[i-1].Fraction {
			t.Fatalf("CDF not strictly increasing at %d: %v then %v", i, cdf[i-1], cdf[i])
		}
	}
	d := h.Distribution()
	// 0, 50, 75, ... while at least one value remains beyond the step, then 100.
	if d[0].Fraction != 0 || d[1].Fraction != 0.5 || d[2].Fraction != 0.75 || d[len(d)-1].Fraction != 1 {
		t.Fatalf("unexpected ladder %v", d)
	}
	// 1000 values: steps 0.5 … 1-1/512 (1/512 of 1000 ≥ 1 value left; 1/1024 of it is not).
	if n := len(d); n != 1+9+1 {
		t.Fatalf("ladder has %d points, want 11: %v", n, d)
	}
}
