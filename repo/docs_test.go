package repo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/dataset"
)

func TestNormalize(t *testing.T) {
	a := "fn a() {\r\n    x  \r\n}\r\n\r\n"
	b := "\nfn a() {\n    x\n}"
	if Normalize(a) != Normalize(b) {
		t.Errorf("%q != %q", Normalize(a), Normalize(b))
	}
	if Normalize("a b") == Normalize("ab") {
		t.Error("inner spaces must count")
	}
}

// jaccard is the exact Jaccard similarity of two texts' shingle sets (the reference
// MinHash estimates).
func jaccard(a, b string) float64 {
	set := func(s string) map[string]bool {
		toks := Tokens(s)
		m := map[string]bool{}
		for i := 0; i+ShingleSize <= len(toks); i++ {
			m[strings.Join(toks[i:i+ShingleSize], "\x00")] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	inter := 0
	for k := range sa {
		if sb[k] {
			inter++
		}
	}
	return float64(inter) / float64(len(sa)+len(sb)-inter)
}

// randomCode is n lines of pseudo-code from a seeded generator.
func randomCode(rng *rand.Rand, n int) []string {
	words := []string{"let", "fn", "x", "y", "buf", "len", "match", "if", "return", "self", "ptr", "0", "1", "+", "(", ")", ";", "{", "}"}
	lines := make([]string, n)
	for i := range lines {
		var b strings.Builder
		for j := 0; j < 8; j++ {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		lines[i] = b.String()
	}
	return lines
}

func TestMinHashEstimatesJaccard(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := randomCode(rng, 200)
	for _, changed := range []int{0, 10, 40, 100, 200} {
		edit := slices.Clone(base)
		for _, i := range rng.Perm(len(edit))[:changed] {
			edit[i] = randomCode(rng, 1)[0]
		}
		a, b := strings.Join(base, "\n"), strings.Join(edit, "\n")
		sa, sb := MinHash(a), MinHash(b)
		est, exact := sa.Similarity(&sb), jaccard(a, b)
		// 128 hashes: the standard error is at most sqrt(0.25/128) ≈ 0.044.
		if d := est - exact; d > 0.15 || d < -0.15 {
			t.Errorf("%d lines changed: MinHash %.3f, exact Jaccard %.3f", changed, est, exact)
		}
	}
}

func TestDedupe(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := randomCode(rng, 300)
	near := slices.Clone(base)
	near[10], near[200] = "changed line", "another"
	far := randomCode(rng, 300)
	mk := func(p string, lines []string) File { return File{Tree: "t", Path: p, Text: strings.Join(lines, "\n")} }
	files := []File{
		mk("a.rs", base),
		{Tree: "t", Path: "a_copy.rs", Text: strings.ReplaceAll(strings.Join(base, "\n"), "\n", "  \r\n") + "\n\n"},
		mk("b.rs", near),
		mk("c.rs", far),
	}
	kept, dups := Dedupe(files, 0.85)
	var names []string
	for _, f := range kept {
		names = append(names, f.Path)
	}
	if want := []string{"a.rs", "c.rs"}; !slices.Equal(names, want) {
		t.Fatalf("kept %q, want %q (dups %+v)", names, want, dups)
	}
	if len(dups) != 2 || dups[0].Reason != ReasonExactDup || dups[0].Of != "t/a.rs" ||
		dups[1].Reason != ReasonNearDuplicate || dups[1].Of != "t/a.rs" || dups[1].Similarity < 0.85 {
		t.Errorf("dups %+v", dups)
	}
	// Threshold 1: exact duplicates only.
	kept, dups = Dedupe(files, 1)
	if len(kept) != 3 || len(dups) != 1 || dups[0].Path != "t/a_copy.rs" {
		t.Errorf("threshold 1: kept %d, dups %+v", len(kept), dups)
	}
	// Every threshold's banding finds a pair at the threshold with high probability.
	for _, th := range []float64{0.1, 0.5, 0.7, 0.85, 0.95, 0.99} {
		r := bands(th)
		if NumHashes%r != 0 {
			t.Errorf("threshold %v: %d rows per band do not divide %d", th, r, NumHashes)
		}
	}
}

// words counts whitespace-separated words: a stand-in tokenizer.
func words(s string) int { return len(strings.Fields(s)) }

func TestChunks(t *testing.T) {
	var lines []string
	for i := 1; i <= 50; i++ {
		lines = append(lines, fmt.Sprintf("w%d a b c", i)) // 4 words a line
	}
	text := strings.Join(lines, "\n") + "\n"
	if c := Chunks(text, 1000, words, 4); len(c) != 1 || c[0].Text != text || c[0].FirstLine != 1 || c[0].LastLine != 50 {
		t.Fatalf("short text: %+v", c)
	}
	chunks := Chunks(text, 40, words, 2) // 10 lines a chunk, 2 shared
	if len(chunks) < 5 {
		t.Fatalf("%d chunks", len(chunks))
	}
	covered := map[int]bool{}
	for i, c := range chunks {
		if n := words(c.Text); n > 40 {
			t.Errorf("chunk %d has %d words > 40", i, n)
		}
		if want := strings.Join(lines[c.FirstLine-1:c.LastLine], "\n") + "\n"; c.Text != want {
			t.Errorf("chunk %d (%d-%d) is not its lines: %q", i, c.FirstLine, c.LastLine, c.Text)
		}
		if i > 0 && c.FirstLine != chunks[i-1].LastLine-1 {
			t.Errorf("chunk %d starts at %d, previous ends at %d: want 2 lines of overlap", i, c.FirstLine, chunks[i-1].LastLine)
		}
		for l := c.FirstLine; l <= c.LastLine; l++ {
			covered[l] = true
		}
	}
	if len(covered) != 50 || chunks[len(chunks)-1].LastLine != 50 {
		t.Errorf("chunks cover %d of 50 lines", len(covered))
	}
	// A line longer than the budget is a chunk of its own; no endless loop.
	long := "a b c\n" + strings.Repeat("x ", 100) + "\nd e f\n"
	c := Chunks(long, 10, words, 4)
	if len(c) != 3 || c[1].FirstLine != 2 || c[1].LastLine != 2 {
		t.Errorf("long line: %+v", c)
	}
	// A count that merges across lines (the joined text costs more) is respected.
	merged := func(s string) int { return words(s) + strings.Count(s, "\n") }
	for _, c := range Chunks(text, 40, merged, 2) {
		if merged(c.Text) > 40 {
			t.Errorf("chunk %d-%d costs %d > 40", c.FirstLine, c.LastLine, merged(c.Text))
		}
	}
}

func TestSplitFiles(t *testing.T) {
	var files []File
	for i := 0; i < 100; i++ {
		files = append(files, File{Tree: "t", Path: fmt.Sprintf("f%03d.rs", i)})
	}
	tr, va := SplitFiles(files, 0.2, 7)
	if len(va) != 20 || len(tr) != 80 {
		t.Fatalf("split %d/%d, want 80/20", len(tr), len(va))
	}
	// Same seed, other order: the same files are held out.
	rev := slices.Clone(files)
	slices.Reverse(rev)
	_, va2 := SplitFiles(rev, 0.2, 7)
	name := func(f File) string { return f.Path }
	a, b := mapNames(va, name), mapNames(va2, name)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Error("the split depends on the order of files")
	}
	_, va3 := SplitFiles(files, 0.2, 8)
	if slices.Equal(mapNames(va, name), mapNames(va3, name)) {
		t.Error("another seed gives the same split")
	}
	if tr, va := SplitFiles(files[:2], 0.01, 1); len(tr) != 1 || len(va) != 1 {
		t.Errorf("2 files at 1%%: %d/%d, want 1/1", len(tr), len(va))
	}
	if tr, va := SplitFiles(files[:1], 0.5, 1); len(tr) != 1 || len(va) != 0 {
		t.Errorf("1 file: %d/%d, want 1/0", len(tr), len(va))
	}
}

func mapNames(fs []File, f func(File) string) []string {
	out := make([]string, len(fs))
	for i, x := range fs {
		out[i] = f(x)
	}
	return out
}

// The chunks of one file stay on one side of the split: rows are made after it.
func TestRowsSplitByFile(t *testing.T) {
	var files []File
	for i := 0; i < 10; i++ {
		files = append(files, File{Tree: "crate", Path: fmt.Sprintf("src/m%d.rs", i), Text: strings.Repeat("let x = 1;\n", 30)})
	}
	tr, va := SplitFiles(files, 0.3, 1)
	opts := RowOptions{Format: FormatPlain, Budget: 40, Count: words, Overlap: 2}
	trainRows, valRows := Rows(tr, opts), Rows(va, opts)
	file := func(r dataset.Row) string { return r.Source[:strings.LastIndexByte(r.Source, ':')] }
	inTrain := map[string]bool{}
	for _, r := range trainRows {
		inTrain[file(r)] = true
	}
	for _, r := range valRows {
		if inTrain[file(r)] {
			t.Errorf("%s has chunks on both sides", file(r))
		}
	}
	if len(trainRows) <= len(tr) {
		t.Errorf("%d rows from %d files: long files were not cut", len(trainRows), len(tr))
	}
	r := trainRows[0]
	if r.Kind != dataset.KindText || r.Header != "// path: "+tr[0].Path+"\n" || !strings.HasPrefix(r.Source, "crate/"+tr[0].Path+":1-") {
		t.Errorf("row %+v", r)
	}
	for _, r := range trainRows {
		if n := words(r.Header) + words(r.Text); n > 40 {
			t.Errorf("%s: header and text are %d words > budget 40", r.Source, n)
		}
	}
}

func TestHeader(t *testing.T) {
	f := File{Tree: "/src/my-crate", Path: "src/lib.rs"}
	if got, want := Header(FormatQwenRepo, "my-crate", f), "<|repo_name|>my-crate\n<|file_sep|>src/lib.rs\n"; got != want {
		t.Errorf("qwen header %q, want %q", got, want)
	}
	if got := Header(FormatPlain, "x", File{Path: "a/b.py"}); got != "# path: a/b.py\n" {
		t.Errorf("python header %q", got)
	}
	if got := Header(FormatPlain, "x", File{Path: "Makefile"}); got != "path: Makefile\n" {
		t.Errorf("Makefile header %q", got)
	}
	has := func(tok string) bool { return tok == QwenRepoName || tok == QwenFileSep }
	if DetectFormat(has) != FormatQwenRepo || DetectFormat(func(string) bool { return false }) != FormatPlain {
		t.Error("DetectFormat")
	}
	if RepoName("/src/my-crate@v1.2") != "my-crate" && RepoName("/src/my-crate") != "my-crate" {
		t.Error("RepoName")
	}
}

// tokenHashes hashes exactly the tokens Tokens returns.
func TestTokenHashes(t *testing.T) {
	for _, s := range []string{"", "fn main() { x_1 += 2; }", "  é_ü naïve\u00a0x\u2003y ∑(a)\r\n\tz", "a\x80b \xff"} {
		toks, hs := Tokens(s), tokenHashes(s)
		if len(toks) != len(hs) {
			t.Errorf("%q: %d tokens, %d hashes", s, len(toks), len(hs))
			continue
		}
		for i, tok := range toks {
			h := uint64(0xcbf29ce484222325)
			for k := 0; k < len(tok); k++ {
				h = (h ^ uint64(tok[k])) * 0x100000001B3
			}
			if h != hs[i] {
				t.Errorf("%q: token %d %q hashed differently", s, i, tok)
			}
		}
	}
}
