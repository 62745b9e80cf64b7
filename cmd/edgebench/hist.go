package main

import (
	"math"
	"math/bits"
	"time"
)

// Hist is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^histSubBits ns are counted exactly; above, every power of
// two is split into 2^(histSubBits-1) equal buckets, so that any recorded
// value is known to within 1/2^(histSubBits-1) of itself (0.8% here) in a
// fixed, small table. Values over histMax are counted in the last bucket
// (Max keeps the exact largest value). The zero Hist is empty and ready;
// it is not safe for concurrent use.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // ns, for the mean
	min    int64
	max    int64
}

const (
	histSubBits = 8
	histSub     = 1 << histSubBits // exact values below this
	histHalf    = histSub / 2      // buckets per power of two above it
	// histMaxBits bounds the tracked range to 2^histMaxBits ns (about 18 minutes).
	histMaxBits = 40
	histMax     = int64(1)<<histMaxBits - 1
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
)

// bucketOf returns the bucket index of v (0 ≤ v ≤ histMax).
func bucketOf(v int64) int {
	if v < histSub {
		return int(v)
	}
	g := bits.Len64(uint64(v)) - histSubBits // ≥ 1: v is in [2^(S+g-1), 2^(S+g))
	return histSub + (g-1)*histHalf + int(uint64(v)>>uint(g)) - histHalf
}

// bucketBounds returns the smallest and largest value counted in bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	g := (i-histSub)/histHalf + 1
	k := int64((i-histSub)%histHalf + histHalf)
	lo = k << uint(g)
	hi = lo + int64(1)<<uint(g) - 1
	return lo, hi
}

// Record counts one value in nanoseconds; negative values (a clock step)
// count as 0.
func (h *Hist) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if h.n == 0 || ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	h.n++
	h.sum += float64(ns)
	h.counts[bucketOf(min(ns, histMax))]++
}

// RecordDuration counts one duration.
func (h *Hist) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every count of o to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Mean is the mean of the recorded values, 0 when empty.
func (h *Hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1): the highest value
// equivalent to the bucket holding the ceil(q·n)-th smallest value, clamped
// to [Min, Max], so a reported percentile never understates. 0 when empty.
func (h *Hist) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // the overflow bucket: its values are not bounded
			}
			_, hi := bucketBounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// CDFPoint is one step of a cumulative distribution: Fraction of the
// values are ≤ Value (ns).
type CDFPoint struct {
	Value    int64   `json:"v"`
	Fraction float64 `json:"f"`
}

// CDF returns the cumulative distribution, one point per non-empty bucket
// (at the bucket's highest value, clamped to Max).
func (h *Hist) CDF() []CDFPoint {
	if h.n == 0 {
		return nil
	}
	var out []CDFPoint
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		_, hi := bucketBounds(i)
		v := min(max(hi, h.min), h.max)
		if i == histBuckets-1 {
			v = h.max
		}
		out = append(out, CDFPoint{Value: v, Fraction: float64(seen) / float64(h.n)})
	}
	return out
}

// Summary is the usual percentile digest of a Hist, in nanoseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ns"`
	Min   int64   `json:"min_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p999_ns"`
	Max   int64   `json:"max_ns"`
}

// Summarize digests h.
func (h *Hist) Summarize() Summary {
	return Summary{
		Count: h.n, Mean: h.Mean(), Min: h.min,
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.max,
	}
}

// Distribution returns the value at the HdrHistogram-style percentile
// ladder 0, 50, 75, 87.5, 93.75 … (each step halves what is left), up to
// the first step where fewer than one value is left, then 100.
func (h *Hist) Distribution() []CDFPoint {
	if h.n == 0 {
		return nil
	}
	out := []CDFPoint{{Value: h.min, Fraction: 0}}
	left := 0.5
	for i := 0; i < 40 && left*float64(h.n) >= 1; i++ {
		q := 1 - left
		out = append(out, CDFPoint{Value: h.Quantile(q), Fraction: q})
		left /= 2
	}
	return append(out, CDFPoint{Value: h.max, Fraction: 1})
}
