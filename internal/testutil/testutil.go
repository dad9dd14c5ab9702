// Package testutil holds helpers shared by the tests of several packages.
package testutil

import "runtime"

// AllocBytes reports how many bytes fn allocates on the heap (all goroutines), for
// tests that bound what a parser may allocate for an input of a given size.
func AllocBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
