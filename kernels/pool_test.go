package kernels

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestParallelCoversOnce(t *testing.T) {
	prev := Threads()
	defer SetThreads(prev)
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		if Threads() != th {
			t.Fatalf("Threads() = %d after SetThreads(%d)", Threads(), th)
		}
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {100, 7}, {1000, 0}, {5, 10}} {
			hits := make([]int32, tc.n)
			var calls atomic.Int32
			Parallel(tc.n, tc.grain, func(lo, hi int) {
				calls.Add(1)
				if tc.grain > 0 && hi-lo < tc.grain && hi != tc.n {
					t.Errorf("chunk [%d,%d) shorter than grain %d", lo, hi, tc.grain)
				}
				for i := lo; i < hi; i++ {
					atomic.AddInt32(&hits[i], 1)
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads=%d n=%d: index %d run %d times", th, tc.n, i, h)
				}
			}
			if c := int(calls.Load()); c > th {
				t.Errorf("threads=%d n=%d: %d chunks, want at most %d", th, tc.n, c, th)
			}
		}
	}
}

// TestParallelNestedAndConcurrent runs nested Parallel calls from several goroutines
// while the pool is being resized; it must finish (no deadlock) with every index done
// once, and be clean under -race.
func TestParallelNestedAndConcurrent(t *testing.T) {
	prev := Threads()
	defer SetThreads(prev)
	SetThreads(3)
	var wg sync.WaitGroup
	const outer, inner = 8, 50
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums := make([]int64, outer)
			for range 20 {
				Parallel(outer, 1, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						var s atomic.Int64
						Parallel(inner, 1, func(a, b int) {
							for j := a; j < b; j++ {
								s.Add(int64(j))
							}
						})
						sums[i] += s.Load()
					}
				})
			}
			for i, s := range sums {
				if s != 20*inner*(inner-1)/2 {
					t.Errorf("goroutine %d: sum[%d] = %d", g, i, s)
				}
			}
		}()
	}
	for i := range 10 {
		SetThreads(1 + i%4)
	}
	wg.Wait()
}

// TestBufClass checks the scratch size classes: every request fits its class, the
// class is at most 25% larger (past tiny sizes), classes grow with the request, and a
// class's own capacity maps back to it (putBuf relies on that).
func TestBufClass(t *testing.T) {
	prev := -1
	for n := 0; n < 1<<16; n++ {
		c, size := bufClass(n)
		if size < n || (n >= 16 && 4*size > 5*n+16) {
			t.Fatalf("n=%d: class %d capacity %d", n, c, size)
		}
		if c < prev {
			t.Fatalf("n=%d: class %d after %d", n, c, prev)
		}
		prev = c
		if c2, s2 := bufClass(size); c2 != c || s2 != size {
			t.Fatalf("n=%d: capacity %d maps to class %d/%d, want %d", n, size, c2, s2, c)
		}
	}
	for _, n := range []int{1 << 20, 5<<20 + 1, 16_711_680, 1 << 30} {
		c, size := bufClass(n)
		if size < n || 4*size > 5*n || c >= len(bufPools) {
			t.Errorf("n=%d: class %d capacity %d", n, c, size)
		}
		if n > 1<<24 {
			continue
		}
		b := getBuf(n)
		if len(*b) != n || cap(*b) != size {
			t.Errorf("getBuf(%d): len %d cap %d, want cap %d", n, len(*b), cap(*b), size)
		}
		putBuf(b)
	}
}
