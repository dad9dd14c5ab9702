//go:build !unix && !windows

package cli

// peakRSSMB is 0 where the system offers no peak resident set.
func peakRSSMB() float64 { return 0 }
