package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, in the manner of HdrHistogram: every power of
// two is split into histSub equal sub-buckets, so a recorded value is known
// to within 1/histSub (about 3%) of itself, and values below 2*histSub ns are
// exact. Recording is a few arithmetic operations and one increment: no
// allocation, no lock. Each connection owns one and they are merged at the end.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits // sub-buckets per power of two
	histMaxBits = 38               // values are clamped below 2^38 ns (about 4.6 minutes)
	histBuckets = (histMaxBits - histSubBits + 1) * histSub
	histMaxVal  = 1<<histMaxBits - 1
)

// Histogram is a fixed-size latency histogram. Its zero value is empty and
// ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      uint64 // ns
	min, max int64  // ns, exact
}

// bucketOf maps a value in nanoseconds to its bucket.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > histMaxVal {
		v = histMaxVal
	}
	u := uint64(v)
	if u < histSub {
		return int(u)
	}
	e := bits.Len64(u) - histSubBits // >= 1
	return e*histSub + int(u>>(e-1)) - histSub
}

// bucketRange is the smallest and the largest value that map to bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	e := i / histSub
	m := int64(i%histSub + histSub)
	lo = m << (e - 1)
	return lo, lo + 1<<(e-1) - 1
}

// Record adds one sample.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN adds k samples of the same value.
func (h *Histogram) RecordN(d time.Duration, k int) {
	if k <= 0 {
		return
	}
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)] += uint64(k)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n += uint64(k)
	h.sum += uint64(v) * uint64(k)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest sample, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the largest sample, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the mean of the samples; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value at quantile q (0 < q <= 1): the highest value
// equivalent to the sample of rank ceil(q*n), as HdrHistogram reports it,
// clamped to the exact minimum and maximum. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q*float64(h.n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			hi = max(hi, h.min)
			return time.Duration(min(hi, h.max))
		}
	}
	return time.Duration(h.max)
}
