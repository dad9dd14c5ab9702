package repo

import (
	"crypto/sha256"
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
	th := tokenHashes(text)
	n := max(len(th)-ShingleSize+1, 1)
	for i := 0; i < n; i++ {
		x := uint64(ShingleSize)
		for j := i; j < i+ShingleSize && j < len(th); j++ {
			x = x*0x100000001B3 ^ th[j]
		}
		x = mix(x)
		for k := range sig {
			// a·x + b with odd a: a permutation of the 64-bit values whose high
			// bits, which decide the minimum, are well mixed.
			if v := x*mults[k] + seeds[k]; v < sig[k] {
				sig[k] = v
			}
		}
	}
	return sig
}

// tokenHashes is a hash of each of Tokens(text), without building the strings.
func tokenHashes(text string) []uint64 {
	out := make([]uint64, 0, len(text)/4)
	for i := 0; i < len(text); {
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		word := func(r rune) bool {
			if r < utf8.RuneSelf {
				return r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
			}
			return unicode.IsLetter(r) || unicode.IsDigit(r)
		}
		switch {
		case r == ' ' || r == '\n' || r == '\t' || r == '\r' || r >= utf8.RuneSelf && unicode.IsSpace(r) || r == '\f' || r == '\v':
			i += n
			continue
		case word(r):
			j := i + n
			for j < len(text) {
				r2, n2 := rune(text[j]), 1
				if r2 >= utf8.RuneSelf {
					r2, n2 = utf8.DecodeRuneInString(text[j:])
				}
				if !word(r2) {
					break
				}
				j += n2
			}
			n = j - i
		}
		h := uint64(0xcbf29ce484222325) // FNV-1a
		for k := i; k < i+n; k++ {
			h = (h ^ uint64(text[k])) * 0x100000001B3
		}
		out = append(out, h)
		i += n
	}
	return out
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

// seeds and mults are the per-hash-function keys (fixed, so signatures are
// reproducible); every mult is odd.
var seeds, mults = func() (s, m [NumHashes]uint64) {
	x := uint64(0x5EED_B1D0_8A00_0001)
	for i := range s {
		x += 0x9E3779B97F4A7C15
		s[i] = mix(x)
		x += 0x9E3779B97F4A7C15
		m[i] = mix(x) | 1
	}
	return s, m
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
	d := NewDeduper(threshold)
	for _, f := range files {
		if dup := d.Add(f); dup != nil {
			dups = append(dups, *dup)
		} else {
			kept = append(kept, f)
		}
	}
	return kept, dups
}

// Deduper removes duplicates incrementally: Add keeps a file unless it duplicates one
// kept before (Dedupe in steps, so held-out files can be checked against training
// files after them).
type Deduper struct {
	threshold float64
	rows      int // per LSH band
	exact     map[[32]byte]int
	names     []string
	sigs      []*Signature
	buckets   map[[2]uint64][]int // (band, band hash) → indices in names
}

// NewDeduper removes exact duplicates, and near duplicates at threshold when it is
// below 1.
func NewDeduper(threshold float64) *Deduper {
	return &Deduper{threshold: threshold, rows: bands(threshold), exact: map[[32]byte]int{}, buckets: map[[2]uint64][]int{}}
}

// Add keeps f and returns nil, or returns why it is dropped.
func (d *Deduper) Add(f File) *Skip {
	norm := Normalize(f.Text)
	h := sha256.Sum256([]byte(norm))
	if i, ok := d.exact[h]; ok {
		return &Skip{Path: f.Name(), Reason: ReasonExactDup, Of: d.names[i], Similarity: 1}
	}
	near := d.threshold < 1
	var sig *Signature
	if near {
		s := MinHash(norm)
		sig = &s
		best, bestSim := -1, 0.0
		seen := map[int]bool{}
		for b := 0; b < NumHashes/d.rows; b++ {
			for _, i := range d.buckets[bandKey(sig, b, d.rows)] {
				if seen[i] {
					continue
				}
				seen[i] = true
				if sim := sig.Similarity(d.sigs[i]); sim >= d.threshold && sim > bestSim {
					best, bestSim = i, sim
				}
			}
		}
		if best >= 0 {
			return &Skip{Path: f.Name(), Reason: ReasonNearDuplicate, Of: d.names[best], Similarity: bestSim}
		}
	}
	d.exact[h] = len(d.names)
	if near {
		for b := 0; b < NumHashes/d.rows; b++ {
			k := bandKey(sig, b, d.rows)
			d.buckets[k] = append(d.buckets[k], len(d.names))
		}
	}
	d.sigs = append(d.sigs, sig)
	d.names = append(d.names, f.Name())
	return nil
}

func bandKey(sig *Signature, b, r int) [2]uint64 {
	h := uint64(b) + 1
	for _, v := range sig[b*r : (b+1)*r] {
		h = mix(h ^ v)
	}
	return [2]uint64{uint64(b), h}
}
