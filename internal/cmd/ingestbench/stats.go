package main

import (
	"math"
	"slices"
	"time"
)

// median of the values; 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rates are the measurements' events per second.
func rates(ms []measurement) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = m.rate()
	}
	return out
}

// percentile is the nearest-rank p-quantile (0 < p ≤ 1) of sorted values;
// 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
