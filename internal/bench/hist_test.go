package bench

import (
	"testing"
	"time"
)

func TestBucketMapping(t *testing.T) {
	// Buckets are contiguous, in order, and every value maps into its own
	// bucket's range, with a width of at most value/histSub.
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d: [%d, %d] after %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d: [%d, %d] maps to %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*histSub && hi-lo+1 > lo/histSub {
			t.Fatalf("bucket %d: [%d, %d] too wide", i, lo, hi)
		}
		prevHi = hi
	}
	if prevHi != histMaxVal {
		t.Errorf("last bucket ends at %d, want %d", prevHi, int64(histMaxVal))
	}
	if bucketOf(-5) != 0 || bucketOf(1<<62) != histBuckets-1 {
		t.Errorf("out-of-range values not clamped")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	seq := func(from, to, step int64) []time.Duration {
		var s []time.Duration
		for v := from; v <= to; v += step {
			s = append(s, time.Duration(v))
		}
		return s
	}
	type want struct {
		q    float64
		v    time.Duration
		tol  float64 // relative
		name string
	}
	cases := []struct {
		name    string
		samples []time.Duration
		wants   []want
	}{
		{"empty", nil, []want{{0.5, 0, 0, "p50"}, {1, 0, 0, "max"}}},
		{"one sample", []time.Duration{123 * time.Microsecond}, []want{
			{0.5, 123 * time.Microsecond, 0, "p50 is the sample, clamped to min/max"},
			{0.999, 123 * time.Microsecond, 0, "p999"},
		}},
		{"1..100 ns, exact below 64", seq(1, 100, 1), []want{
			{0.01, 1, 0, "p1"},
			{0.5, 50, 0, "p50"},
			{0.63, 63, 0, "p63"},
			{0.99, 99, 0, "p99: bucket [98,99]"},
			{0.999, 100, 0, "p99.9 clamped to max"},
			{1, 100, 0, "p100"},
		}},
		{"1..1000 µs", seq(1000, 1_000_000, 1000), []want{
			{0.5, 500 * time.Microsecond, 1.0 / histSub, "p50"},
			{0.9, 900 * time.Microsecond, 1.0 / histSub, "p90"},
			{0.99, 990 * time.Microsecond, 1.0 / histSub, "p99"},
			{0.999, 999 * time.Microsecond, 1.0 / histSub, "p999"},
		}},
		{"bimodal 99% 10µs, 1% 5ms", append(repeat(10*time.Microsecond, 990), repeat(5*time.Millisecond, 10)...), []want{
			{0.5, 10 * time.Microsecond, 1.0 / histSub, "p50"},
			{0.99, 10 * time.Microsecond, 1.0 / histSub, "p99: rank 990 is the last fast one"},
			{0.991, 5 * time.Millisecond, 0, "p99.1: clamped to max"},
			{0.999, 5 * time.Millisecond, 0, "p999"},
		}},
		{"beyond range clamps to max", []time.Duration{time.Hour, time.Hour}, []want{
			{0.5, time.Hour, 0, "p50 = exact max"},
		}},
	}
	for _, tc := range cases {
		// Record the samples split over two histograms and merge them, as
		// a run does with its connections.
		var a, b, h Histogram
		for i, s := range tc.samples {
			if i%2 == 0 {
				a.Record(s)
			} else {
				b.Record(s)
			}
		}
		h.Merge(&a)
		h.Merge(&b)
		if h.Count() != uint64(len(tc.samples)) {
			t.Errorf("%s: count %d", tc.name, h.Count())
		}
		for _, w := range tc.wants {
			got := h.Quantile(w.q)
			diff := float64(got - w.v)
			if diff < 0 {
				diff = -diff
			}
			if diff > w.tol*float64(w.v) {
				t.Errorf("%s: %s (q=%v) = %v, want %v (±%.1f%%)", tc.name, w.name, w.q, got, w.v, w.tol*100)
			}
		}
	}
}

func TestHistogramRecordN(t *testing.T) {
	var h Histogram
	h.RecordN(time.Millisecond, 3)
	h.RecordN(time.Second, 1)
	h.RecordN(time.Second, 0)
	if h.Count() != 4 || h.Min() != time.Millisecond || h.Max() != time.Second {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if m := h.Mean(); m != (3*time.Millisecond+time.Second)/4 {
		t.Errorf("mean %v", m)
	}
	if p := h.Quantile(0.75); p < time.Millisecond || p > time.Millisecond*33/32 {
		t.Errorf("p75 %v", p)
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(12345) }); n != 0 {
		t.Errorf("%v allocations per Record", n)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}
