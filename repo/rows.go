package repo

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bidora/bidora/dataset"
)

// Format is how a document's header names its file.
type Format int

const (
	// FormatPlain is a comment line in the file's language naming its path
	// ("// path: src/lib.rs"; "path: …" for a language without line comments).
	FormatPlain Format = iota
	// FormatQwenRepo is Qwen2.5-Coder's repository format:
	// "<|repo_name|>{repo}\n<|file_sep|>{path}\n" before the file's text.
	FormatQwenRepo
)

// Qwen2.5-Coder's repository-level tokens.
const (
	QwenRepoName = "<|repo_name|>"
	QwenFileSep  = "<|file_sep|>"
)

// DetectFormat picks the header format a tokenizer supports; hasToken says whether
// the vocabulary holds a token.
func DetectFormat(hasToken func(string) bool) Format {
	if hasToken(QwenRepoName) && hasToken(QwenFileSep) {
		return FormatQwenRepo
	}
	return FormatPlain
}

// String names the format.
func (f Format) String() string {
	if f == FormatQwenRepo {
		return "qwen2.5-coder repository (<|repo_name|>/<|file_sep|>)"
	}
	return "plain path comment"
}

// Header is the text before a file's content in its document.
func Header(f Format, repoName string, file File) string {
	if f == FormatQwenRepo {
		return QwenRepoName + repoName + "\n" + QwenFileSep + file.Path + "\n"
	}
	if l := languageOf(file.Path); l != nil && l.Comment != "" {
		return l.Comment + " path: " + file.Path + "\n"
	}
	return "path: " + file.Path + "\n"
}

// RepoName is the name a tree's documents carry: its directory's base name (for
// DIR@REV, DIR's).
func RepoName(tree string) string {
	if dir, _, ok := splitRev(tree); ok {
		tree = dir
	}
	if abs, err := filepath.Abs(tree); err == nil {
		tree = abs
	}
	return filepath.Base(tree)
}

// Chunk is a piece of a file: whole lines FirstLine..LastLine (1-based, inclusive).
type Chunk struct {
	Text                string
	FirstLine, LastLine int
}

// Chunks cuts text at line boundaries into pieces of at most budget tokens (count
// gives a text's token count), consecutive pieces sharing overlap lines. A text
// within budget is one chunk; a single line longer than budget is a chunk of its own
// (the encoder truncates it).
func Chunks(text string, budget int, count func(string) int, overlap int) []Chunk {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil
	}
	if budget < 1 || count(text) <= budget {
		return []Chunk{{Text: text, FirstLine: 1, LastLine: len(lines)}}
	}
	costs := make([]int, len(lines))
	for i, l := range lines {
		costs[i] = count(l)
	}
	var out []Chunk
	for start := 0; start < len(lines); {
		// Grow by the per-line counts, then check the joined text (tokens can merge
		// across a line break) and shrink until it fits.
		end, sum := start, 0
		for end < len(lines) && (end == start || sum+costs[end] <= budget) {
			sum += costs[end]
			end++
		}
		for end-start > 1 && count(strings.Join(lines[start:end], "")) > budget {
			end--
		}
		out = append(out, Chunk{Text: strings.Join(lines[start:end], ""), FirstLine: start + 1, LastLine: end})
		if end == len(lines) {
			break
		}
		next := end - overlap
		if next <= start {
			next = start + 1
		}
		if next > end {
			next = end
		}
		start = next
	}
	return out
}

// RowOptions controls Rows.
type RowOptions struct {
	Format Format
	// Budget is the most tokens of a chunk's text (0 = never cut); the caller leaves
	// room for the header and special tokens.
	Budget int
	// Count gives a text's token count (needed with Budget).
	Count func(string) int
	// Overlap is the number of lines consecutive chunks share.
	Overlap int
}

// DefaultOverlap is the number of lines consecutive chunks of a file share.
const DefaultOverlap = 4

// Rows renders files as text rows: each file (or each chunk of a long one) with its
// header; Source is "<tree>/<path>:<first line>-<last line>".
func Rows(files []File, o RowOptions) []dataset.Row {
	var out []dataset.Row
	names := map[string]string{}
	for _, f := range files {
		name, ok := names[f.Tree]
		if !ok {
			name = RepoName(f.Tree)
			names[f.Tree] = name
		}
		header := Header(o.Format, name, f)
		budget := o.Budget
		if budget > 0 && o.Count != nil {
			budget -= o.Count(header)
			if budget < 1 {
				budget = 1
			}
		}
		var chunks []Chunk
		if o.Count == nil || o.Budget <= 0 {
			n := strings.Count(f.Text, "\n")
			if !strings.HasSuffix(f.Text, "\n") {
				n++
			}
			chunks = []Chunk{{Text: f.Text, FirstLine: 1, LastLine: n}}
		} else {
			chunks = Chunks(f.Text, budget, o.Count, o.Overlap)
		}
		for _, c := range chunks {
			out = append(out, dataset.Row{Kind: dataset.KindText, Header: header, Text: c.Text,
				Source: fmt.Sprintf("%s:%d-%d", f.Name(), c.FirstLine, c.LastLine)})
		}
	}
	return out
}

// SplitFiles holds out a share frac of the files for validation, whole files only:
// each file's place is decided by a hash of the seed and its name, so the split does
// not depend on the order of files and adding a file moves no other. At least one
// file is held out when frac > 0 and there are two or more, and at least one is kept
// for training.
func SplitFiles(files []File, frac float64, seed uint64) (train, val []File) {
	if frac <= 0 || len(files) < 2 {
		return files, nil
	}
	type keyed struct {
		k uint64
		i int
	}
	ks := make([]keyed, len(files))
	for i, f := range files {
		ks[i] = keyed{splitKey(seed, f.Name()), i}
	}
	sort.Slice(ks, func(a, b int) bool { return ks[a].k < ks[b].k || ks[a].k == ks[b].k && ks[a].i < ks[b].i })
	n := int(frac*float64(len(files)) + 0.5)
	n = max(1, min(n, len(files)-1))
	isVal := make([]bool, len(files))
	for _, k := range ks[:n] {
		isVal[k.i] = true
	}
	for i, f := range files {
		if isVal[i] {
			val = append(val, f)
		} else {
			train = append(train, f)
		}
	}
	return train, val
}

func splitKey(seed uint64, name string) uint64 {
	h := mix(seed ^ 0xA5A5_0F0F_1234_5678)
	for i := 0; i < len(name); i++ {
		h = mix(h ^ uint64(name[i]))
	}
	return h
}
