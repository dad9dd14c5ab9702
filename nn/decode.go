package nn

import (
	"fmt"
	"math"

	"github.com/bidora/bidora/kernels"
)

// CacheShape describes one layer's key/value cache for decoding: Hkv heads of width D,
// room for Cap positions. The cache is head-major, [Hkv, Cap, D], so that the keys one
// head attends to are contiguous in memory.
type CacheShape struct {
	Hq, Hkv, D int
	Cap        int
	// Window, when positive, is the layer's sliding window: the query at position p
	// sees keys p − Window < j ≤ p (as AttnShape.Window).
	Window int
}

// Validate checks that the shape is usable (grouped-query heads divide evenly).
func (s *CacheShape) Validate() error {
	switch {
	case s.Hq <= 0 || s.Hkv <= 0 || s.D <= 0 || s.Cap <= 0:
		return fmt.Errorf("kv cache shape %+v: every size must be positive", *s)
	case s.Hq%s.Hkv != 0:
		return fmt.Errorf("kv cache shape: %d query heads are not a multiple of %d key/value heads", s.Hq, s.Hkv)
	}
	return nil
}

// Len is the number of floats of one layer's key (or value) cache.
func (s *CacheShape) Len() int { return s.Hkv * s.Cap * s.D }

// StoreKV writes n new keys and values k, v [n, Hkv·D] (token-major, as a linear layer
// produces them) into the caches kc, vc [Hkv, Cap, D] at positions start…start+n−1.
func StoreKV(kc, vc, k, v []float32, start, n int, sh *CacheShape) {
	D, Hkv := sh.D, sh.Hkv
	for t := range n {
		for h := range Hkv {
			src := (t*Hkv + h) * D
			dst := (h*sh.Cap + start + t) * D
			copy(kc[dst:dst+D], k[src:src+D])
			copy(vc[dst:dst+D], v[src:src+D])
		}
	}
}

// AttentionDecode computes causal grouped-query attention for n new queries q
// [n, Hq·D] (rotated) at positions start…start+n−1 against the cache kc, vc
// [Hkv, Cap, D], which must already hold the keys and values of positions
// 0…start+n−1: query t sees keys 0…start+t (only the last sh.Window of them with a
// window). The result goes to out [n, Hq·D].
// Scores are f32 with the softmax sum in f64 (online softmax over blocks of keys, as
// AttentionForward), so a prefill followed by single-token steps agrees with the
// full-sequence path to rounding.
func AttentionDecode(out, q, kc, vc []float32, start, n int, sh *CacheShape) {
	Hq, D := sh.Hq, sh.D
	group := Hq / sh.Hkv
	scale := float32(1 / math.Sqrt(float64(D)))
	kernels.Parallel(n*Hq, 1, func(lo, hi int) {
		var s [attnBlock]float32
		for w := lo; w < hi; w++ {
			t, h := w/Hq, w%Hq
			o := t*Hq*D + h*D
			base := (h / group) * sh.Cap * D
			p := start + t
			j0 := 0
			if sh.Window > 0 {
				j0 = max(0, p-sh.Window+1)
			}
			decodeRow(out[o:o+D], q[o:o+D], kc[base+j0*D:], vc[base+j0*D:], p+1-j0, D, scale, s[:])
		}
	})
}

// decodeRow attends one query head qi to the first nk keys of one cache head.
func decodeRow(oi, qi, kh, vh []float32, nk, D int, scale float32, s []float32) {
	clear(oi)
	m, l := float32(math.Inf(-1)), float64(0)
	for j0 := 0; j0 < nk; j0 += attnBlock {
		j1 := min(j0+attnBlock, nk)
		bmax := float32(math.Inf(-1))
		for j := j0; j < j1; j++ {
			sc := kernels.Dot(qi, kh[j*D:(j+1)*D]) * scale
			s[j-j0] = sc
			bmax = max(bmax, sc)
		}
		if bmax > m {
			if l > 0 {
				c := float32(math.Exp(float64(m - bmax)))
				for d := range oi {
					oi[d] *= c
				}
				l *= float64(c)
			}
			m = bmax
		}
		for j := j0; j < j1; j++ {
			p := float32(math.Exp(float64(s[j-j0] - m)))
			l += float64(p)
			kernels.Axpy(p, vh[j*D:(j+1)*D], oi)
		}
	}
	inv := float32(1 / l)
	for d := range oi {
		oi[d] *= inv
	}
}
