package fim

import (
	"math/rand/v2"
	"strings"
)

// SpanKind is the shape of a held-out span for the infilling metric.
type SpanKind string

// Span kinds, as code-model papers report FIM quality.
const (
	SingleLine SpanKind = "line"  // the text of one non-blank line (its line break stays in the suffix)
	MultiLine  SpanKind = "block" // 2 to 8 consecutive lines, the last one's line break excluded
)

// MaxBlockLines bounds a MultiLine span.
const MaxBlockLines = 8

// RandomSpan picks a span of kind in text with r and returns the document cut around
// it. ok is false when text has no such span (no non-blank line; fewer than two lines
// for a block).
func RandomSpan(text string, kind SpanKind, r *rand.Rand) (prefix, middle, suffix string, ok bool) {
	// starts[i] is the byte offset of line i; ends[i] the offset of its "\n" (or len).
	var starts, ends []int
	for off := 0; off <= len(text); {
		nl := strings.IndexByte(text[off:], '\n')
		if nl < 0 {
			if off < len(text) {
				starts, ends = append(starts, off), append(ends, len(text))
			}
			break
		}
		starts, ends = append(starts, off), append(ends, off+nl)
		off += nl + 1
	}
	switch kind {
	case SingleLine:
		var cand []int
		for i := range starts {
			if strings.TrimSpace(text[starts[i]:ends[i]]) != "" {
				cand = append(cand, i)
			}
		}
		if len(cand) == 0 {
			return "", "", "", false
		}
		i := cand[r.IntN(len(cand))]
		return text[:starts[i]], text[starts[i]:ends[i]], text[ends[i]:], true
	case MultiLine:
		if len(starts) < 2 {
			return "", "", "", false
		}
		n := 2 + r.IntN(min(MaxBlockLines, len(starts))-1) // 2 … min(8, lines)
		i := r.IntN(len(starts) - n + 1)
		j := i + n - 1
		return text[:starts[i]], text[starts[i]:ends[j]], text[ends[j]:], true
	}
	return "", "", "", false
}

// EditSimilarity is 1 − Levenshtein(a, b) / max(len(a), len(b)) over runes, the edit
// similarity code-model papers report for infilling; 1 for two empty strings.
func EditSimilarity(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	n := max(len(ra), len(rb))
	if n == 0 {
		return 1
	}
	return 1 - float64(Levenshtein(ra, rb))/float64(n)
}

// Levenshtein is the edit distance (insertions, deletions, substitutions of one rune
// each) between a and b.
func Levenshtein(a, b []rune) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			up := row[j]
			row[j] = min(row[j]+1, row[j-1]+1, diag+cost)
			diag = up
		}
	}
	return row[len(b)]
}
