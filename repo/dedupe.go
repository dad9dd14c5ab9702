package repo

import (
	"crypto/sha256"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NumHashes is the length of a MinHash signature.
const NumHashes = 128

// ShingleSize is the number of consecutive tokens in one shingle.
const ShingleSize = 5

// Normalize is the text exact-duplicate detection compares: CRLF and CR line endings
// as LF, trailing blanks of every line dropped, leading and trailing blank lines
// dropped.
func Normalize(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\f\v")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// Tokens splits code into the units shingles are made of: runs of letters, digits
// and '_', and single other non-space characters.
func Tokens(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case unicode.IsSpace(r):
			i += n
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			j := i + n
			for j < len(text) {
				r2, n2 := utf8.DecodeRuneInString(text[j:])
				if r2 != '_' && !unicode.IsLetter(r2) && !unicode.IsDigit(r2) {
					break
				}
				j += n2
			}
			out = append(out, text[i:j])
			i = j
		default:
			out = append(out, text[i:i+n])
			i += n
		}
	}
	return out
}

// Signature is a MinHash signature: for each of NumHashes hash functions, the least
// hash over the shingles of a text. The share of equal entries of two signatures
// estimates the Jaccard similarity of their shingle sets.
type Signature [NumHashes]uint64

// MinHash computes the signature of text's ShingleSize-token shingles (a text of
// fewer tokens is one shingle).
func MinHash(text string) Signature {
	var sig Signature
	for i := range sig {
		sig[i] = math.MaxUint64
	}
	toks := Tokens(text)
	n := len(toks) - ShingleSize + 1
	if n < 1 {
		n = 1
	}
	h := fnv.New64a()
	for i := 0; i < n; i++ {
		h.Reset()
		for j := i; j < i+ShingleSize && j < len(toks); j++ {
			h.Write([]byte(toks[j]))
			h.Write([]byte{0})
		}
		x := h.Sum64()
		for k := range sig {
			if v := mix(x ^ seeds[k]); v < sig[k] {
				sig[k] = v
			}
		}
	}
	return sig
}

// Similarity is the share of equal entries: the estimated Jaccard similarity.
func (s *Signature) Similarity(o *Signature) float64 {
	eq := 0
	for i := range s {
		if s[i] == o[i] {
			eq++
		}
	}
	return float64(eq) / NumHashes
}

// seeds are the per-hash-function keys (fixed, so signatures are reproducible).
var seeds = func() (s [NumHashes]uint64) {
	x := uint64(0x5EED_B1D0_8A00_0001)
	for i := range s {
		x += 0x9E3779B97F4A7C15
		s[i] = mix(x)
	}
	return s
}()

// mix is splitmix64's finaliser.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// bands picks the LSH banding (rows per band r, NumHashes/r bands) with the most rows
// per band for which a pair at exactly the threshold becomes a candidate with
// probability at least 0.995; pairs are then checked on their whole signatures.
func bands(threshold float64) int {
	best := 1
	for _, r := range []int{1, 2, 4, 8, 16} {
		b := NumHashes / r
		if 1-math.Pow(1-math.Pow(threshold, float64(r)), float64(b)) >= 0.995 {
			best = r
		}
	}
	return best
}

// Dedupe keeps the first of each set of duplicate files, in order: exact duplicates
// (equal Normalize text) always, near duplicates (estimated Jaccard similarity of
// their shingles at least threshold) when threshold < 1. The dropped files come back
// as Skips naming the kept file they duplicate.
func Dedupe(files []File, threshold float64) (kept []File, dups []Skip) {
	exact := map[[32]byte]int{} // hash → index in kept
	near := threshold < 1
	r := bands(threshold)
	var sigs []*Signature
	buckets := map[[2]uint64][]int{} // (band, band hash) → indices in kept
	for _, f := range files {
		norm := Normalize(f.Text)
		h := sha256.Sum256([]byte(norm))
		if i, ok := exact[h]; ok {
			dups = append(dups, Skip{Path: f.Name(), Reason: ReasonExactDup, Of: kept[i].Name(), Similarity: 1})
			continue
		}
		var sig *Signature
		if near {
			s := MinHash(norm)
			sig = &s
			best, bestSim := -1, 0.0
			seen := map[int]bool{}
			for b := 0; b < NumHashes/r; b++ {
				for _, i := range buckets[bandKey(sig, b, r)] {
					if seen[i] {
						continue
					}
					seen[i] = true
					if sim := sig.Similarity(sigs[i]); sim >= threshold && sim > bestSim {
						best, bestSim = i, sim
					}
				}
			}
			if best >= 0 {
				dups = append(dups, Skip{Path: f.Name(), Reason: ReasonNearDuplicate, Of: kept[best].Name(), Similarity: bestSim})
				continue
			}
		}
		exact[h] = len(kept)
		if near {
			for b := 0; b < NumHashes/r; b++ {
				k := bandKey(sig, b, r)
				buckets[k] = append(buckets[k], len(kept))
			}
			sigs = append(sigs, sig)
		}
		kept = append(kept, f)
	}
	return kept, dups
}

func bandKey(sig *Signature, b, r int) [2]uint64 {
	h := uint64(b) + 1
	for _, v := range sig[b*r : (b+1)*r] {
		h = mix(h ^ v)
	}
	return [2]uint64{uint64(b), h}
}
