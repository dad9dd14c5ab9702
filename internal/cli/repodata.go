package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/repo"
	"github.com/bidora/bidora/tokenizer"
)

// repoReserve is the number of tokens a chunk leaves free besides its header: BOS,
// EOS and the sentinels a fill-in-the-middle example adds.
const repoReserve = 8

// repoDataOptions are the settings of source-tree data (train --train-dir, eval
// --data-dir).
type repoDataOptions struct {
	Flag      string // the flag the trees came with, for messages
	Trees     []string
	ValTrees  []string
	Walk      repo.Options
	Dedupe    float64
	ValSplit  float64
	Seed      uint64
	MaxSeqLen int
}

// repoData is what source-tree data became: the files on each side of the split,
// their rows, and what was skipped and why.
type repoData struct {
	format     repo.Format
	train, val []repo.File
	trainRows  []dataset.Row
	valRows    []dataset.Row
	skipped    []repo.Skip
	valFrom    string
	count      func(string) int
	// fim counts the examples encoding made fill-in-the-middle.
	fim int
}

func repoOptionsOf(cfg *config.Train) repoDataOptions {
	return repoDataOptions{Flag: "--train-dir", Trees: cfg.TrainDir, ValTrees: cfg.ValDir,
		Walk:   repo.Options{Include: cfg.Include, Exclude: cfg.Exclude, Lang: cfg.Lang, MaxFileBytes: cfg.MaxFileBytes},
		Dedupe: cfg.DedupeThreshold, ValSplit: cfg.ValSplit, Seed: uint64(cfg.Seed), MaxSeqLen: cfg.MaxSeqLen}
}

// walkTrees walks each tree; errors name flag and tree.
func walkTrees(ctx context.Context, flag string, trees []string, o repo.Options) ([]repo.File, []repo.Skip, error) {
	var files []repo.File
	var skipped []repo.Skip
	for _, t := range trees {
		fs, rep, err := repo.Walk(ctx, t, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("%s %s: interrupted: %w", flag, t, ctx.Err())
			}
			if errors.Is(err, repo.ErrNoGit) {
				return nil, nil, fmt.Errorf("%s %s: %w", flag, t, err)
			}
			if strings.Contains(err.Error(), "unknown language") {
				return nil, nil, usageErrorf("--lang: %w", err)
			}
			return nil, nil, usageErrorf("%s: %w", flag, err)
		}
		files = append(files, fs...)
		skipped = append(skipped, rep.Skipped...)
	}
	return files, skipped, nil
}

// loadRepoFiles walks the trees, removes duplicates (a held-out file that duplicates
// a training file is dropped: it would measure memory, not learning), splits off
// validation files and renders both sides as rows cut to the token budget.
func loadRepoFiles(ctx context.Context, tok *tokenizer.Tokenizer, o repoDataOptions) (*repoData, error) {
	train, skipped, err := walkTrees(ctx, o.Flag, o.Trees, o.Walk)
	if err != nil {
		return nil, err
	}
	val, vskipped, err := walkTrees(ctx, "--val-dir", o.ValTrees, o.Walk)
	if err != nil {
		return nil, err
	}
	skipped = append(skipped, vskipped...)
	// Training files first, then the held-out ones against them and each other.
	dd := repo.NewDeduper(o.Dedupe)
	keep := func(files []repo.File) []repo.File {
		var out []repo.File
		for _, f := range files {
			if dup := dd.Add(f); dup != nil {
				skipped = append(skipped, *dup)
			} else {
				out = append(out, f)
			}
		}
		return out
	}
	train, val = keep(train), keep(val)
	d := &repoData{skipped: skipped, format: repo.DetectFormat(func(s string) bool { _, ok := tok.TokenToID(s); return ok })}
	d.count = func(s string) int { return len(tok.Encode(s)) }
	switch {
	case len(o.ValTrees) > 0:
		if len(val) == 0 {
			return nil, usageErrorf("--val-dir %s: no files left to validate on (all skipped or duplicates of training files)", strings.Join(o.ValTrees, ", "))
		}
		d.valFrom = "--val-dir " + strings.Join(o.ValTrees, ", ")
	case o.ValSplit > 0:
		train, val = repo.SplitFiles(train, o.ValSplit, o.Seed)
		if len(val) > 0 {
			d.valFrom = fmt.Sprintf("%d of %d files of %s (--val-split %g, seeded, by file)", len(val), len(train)+len(val), strings.Join(o.Trees, ", "), o.ValSplit)
		}
	}
	if len(train) == 0 {
		return nil, usageErrorf("%s %s: no files to train on (%s)", o.Flag, strings.Join(o.Trees, ", "), skipSummary(skipped))
	}
	d.train, d.val = train, val
	ro := repo.RowOptions{Format: d.format, Budget: o.MaxSeqLen - repoReserve, Count: d.count, Overlap: repo.DefaultOverlap}
	d.trainRows, d.valRows = repo.Rows(train, ro), repo.Rows(val, ro)
	return d, nil
}

// skipSummary is "12 skipped: gitignored 5, vendored 3, …" (most frequent first).
func skipSummary(skipped []repo.Skip) string {
	if len(skipped) == 0 {
		return "none skipped"
	}
	counts := map[repo.Reason]int{}
	for _, s := range skipped {
		counts[s.Reason]++
	}
	reasons := make([]repo.Reason, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		return counts[reasons[i]] > counts[reasons[j]] || counts[reasons[i]] == counts[reasons[j]] && reasons[i] < reasons[j]
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %d", r, counts[r])
	}
	return fmt.Sprintf("%d skipped: %s", len(skipped), strings.Join(parts, ", "))
}

// printRepoReport writes what was taken and skipped, by reason, to w.
func (d *repoData) printReport(w io.Writer, trees []string, what string) {
	fmt.Fprintf(w, "data: %s: %d files taken, %s\n", strings.Join(trees, ", "), len(d.train)+len(d.val), skipSummary(d.skipped))
	fmt.Fprintf(w, "data: documents with a %s header; %d %s files → %d rows", d.format, len(d.train), what, len(d.trainRows))
	if d.valFrom != "" {
		fmt.Fprintf(w, "; %d validation files → %d rows (%s)", len(d.val), len(d.valRows), d.valFrom)
	}
	fmt.Fprintln(w, "; files longer than --max-seq-len are cut at line boundaries")
}

// loadRepoData is trainRun.loadData for --train-dir: files become rows, and the rows
// go through the same encoding as a --train-file's.
func (r *trainRun) loadRepoData(ctx context.Context, stdio *IO) error {
	cfg := r.cfg
	d, err := loadRepoFiles(ctx, r.pipe.tok, repoOptionsOf(cfg))
	if err != nil {
		return err
	}
	r.repo = d
	d.printReport(stdio.Err, cfg.TrainDir, "training")
	if cfg.MaxSamples > 0 && len(d.trainRows) > cfg.MaxSamples {
		fmt.Fprintf(stdio.Err, "data: --max-samples %d: using the first %d of %d training rows\n", cfg.MaxSamples, cfg.MaxSamples, len(d.trainRows))
		d.trainRows = d.trainRows[:cfg.MaxSamples]
	}
	rep := &dataReport{}
	if r.trainEx, err = r.pipe.encodeRows(ctx, d.trainRows, cfg.Strict, rep); err != nil {
		return wrapDataErr(err)
	}
	rep.print(stdio.Err, "--train-dir "+strings.Join(cfg.TrainDir, ", "))
	d.fim = rep.FIM
	if len(r.trainEx) == 0 {
		return usageErrorf("--train-dir %s: no usable training rows", strings.Join(cfg.TrainDir, ", "))
	}
	if len(d.valRows) > 0 {
		vrep := &dataReport{}
		if r.valEx, err = r.pipe.encodeRows(ctx, d.valRows, cfg.Strict, vrep); err != nil {
			return wrapDataErr(err)
		}
		vrep.print(stdio.Err, "validation files")
		d.fim += vrep.FIM
		r.valFrom = d.valFrom
	}
	fmt.Fprintf(stdio.Err, "data: %d training and %d validation examples\n", len(r.trainEx), len(r.valEx))
	return nil
}

// dryRunFile is one file of --dry-run --json.
type dryRunFile struct {
	Path   string `json:"path"`
	Lang   string `json:"lang,omitempty"`
	Bytes  int    `json:"bytes"`
	Tokens int    `json:"tokens"`
	Chunks int    `json:"chunks"`
}

// dryRunReport is --dry-run --json's object (a contract for scripts: files, skipped,
// val_files, duplicates, counts).
type dryRunReport struct {
	Files        []string       `json:"files"`
	TrainFiles   []string       `json:"train_files"`
	ValFiles     []string       `json:"val_files"`
	Skipped      []repo.Skip    `json:"skipped"`
	Duplicates   int            `json:"duplicates"`
	Counts       map[string]int `json:"counts"`
	Header       string         `json:"header_format"`
	ValFrom      string         `json:"val_from,omitempty"`
	Details      []dryRunFile   `json:"file_details"`
	Examples     map[string]int `json:"examples"`
	Tokens       map[string]int `json:"tokens"`
	FIMExamples  int            `json:"fim_examples,omitempty"`
	MaxSeqLen    int            `json:"max_seq_len"`
	SampleSource string         `json:"sample_source,omitempty"`
	Sample       string         `json:"sample,omitempty"`
}

// runDryRun loads the tokenizer and the data as training would, prints the files,
// the split and the report, and stops before the weights are loaded.
func runDryRun(ctx context.Context, stdio *IO, cfg *config.Train, asJSON bool) error {
	r, err := prepareRun(ctx, stdio, cfg)
	if err != nil {
		return err
	}
	out := r.dryRunReport()
	if asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := stdio.Out
	if r.repo == nil {
		fmt.Fprintf(w, "data: %s: %d training and %d validation examples, %d and %d tokens\n", orDataset(cfg),
			out.Examples["train"], out.Examples["val"], out.Tokens["train"], out.Tokens["val"])
		fmt.Fprintln(w, "dry run: stopped before loading the weights")
		return nil
	}
	list := func(title string, names []string) {
		fmt.Fprintf(w, "%s (%d):\n", title, len(names))
		for _, n := range names {
			d := out.detail(n)
			fmt.Fprintf(w, "  %s  %d tokens", n, d.Tokens)
			if d.Chunks > 1 {
				fmt.Fprintf(w, ", %d chunks", d.Chunks)
			}
			fmt.Fprintln(w)
		}
	}
	list("training files", out.TrainFiles)
	if out.ValFrom != "" {
		list("validation files", out.ValFiles)
		fmt.Fprintf(w, "  (%s)\n", out.ValFrom)
	}
	fmt.Fprintf(w, "skipped (%d):\n", len(out.Skipped))
	for _, s := range out.Skipped {
		fmt.Fprintf(w, "  %s: %s", s.Path, s.Reason)
		if s.Of != "" {
			fmt.Fprintf(w, " of %s (similarity %.2f)", s.Of, s.Similarity)
		}
		fmt.Fprintln(w)
	}
	keys := make([]string, 0, len(out.Counts))
	for k := range out.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprint(w, "counts:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s %d;", k, out.Counts[k])
	}
	fmt.Fprintf(w, "\nheader: %s; examples: %d training, %d validation (%d fill-in-the-middle); tokens: %d training, %d validation\n",
		out.Header, out.Examples["train"], out.Examples["val"], out.FIMExamples, out.Tokens["train"], out.Tokens["val"])
	if out.Sample != "" {
		fmt.Fprintf(w, "first training document (%s), as the model sees it:\n%s\n", out.SampleSource, out.Sample)
	}
	fmt.Fprintln(w, "dry run: stopped before loading the weights")
	return nil
}

func (o *dryRunReport) detail(name string) dryRunFile {
	for _, d := range o.Details {
		if d.Path == name {
			return d
		}
	}
	return dryRunFile{Path: name}
}

func (r *trainRun) dryRunReport() *dryRunReport {
	out := &dryRunReport{Files: []string{}, TrainFiles: []string{}, ValFiles: []string{}, Skipped: []repo.Skip{},
		Counts: map[string]int{}, Examples: map[string]int{"train": len(r.trainEx), "val": len(r.valEx)},
		Tokens: map[string]int{"train": exampleTokens(r.trainEx), "val": exampleTokens(r.valEx)}, MaxSeqLen: r.cfg.MaxSeqLen}
	if len(r.trainEx) > 0 {
		ids := make([]int, len(r.trainEx[0].InputIDs))
		for i, id := range r.trainEx[0].InputIDs {
			ids[i] = int(id)
		}
		out.Sample = r.pipe.tok.Decode(ids, false)
		if len(out.Sample) > 2000 {
			out.Sample = out.Sample[:2000] + "…"
		}
	}
	d := r.repo
	if d == nil {
		out.Files = append(out.Files, orDataset(r.cfg))
		if r.cfg.ValFile != "" {
			out.ValFiles = append(out.ValFiles, r.cfg.ValFile)
		}
		out.ValFrom = r.valFrom
		return out
	}
	out.Header, out.ValFrom, out.FIMExamples = d.format.String(), d.valFrom, d.fim
	if len(d.trainRows) > 0 {
		out.SampleSource = d.trainRows[0].Source
	}
	chunks := map[string]int{}
	for _, rows := range [][]dataset.Row{d.trainRows, d.valRows} {
		for _, row := range rows {
			chunks[row.Source[:strings.LastIndexByte(row.Source, ':')]]++
		}
	}
	add := func(dst *[]string, files []repo.File) {
		for _, f := range files {
			*dst = append(*dst, f.Name())
			out.Files = append(out.Files, f.Name())
			out.Details = append(out.Details, dryRunFile{Path: f.Name(), Lang: f.Lang, Bytes: len(f.Text), Tokens: d.count(f.Text), Chunks: chunks[f.Name()]})
		}
	}
	add(&out.TrainFiles, d.train)
	add(&out.ValFiles, d.val)
	out.Skipped = append(out.Skipped, d.skipped...)
	out.Counts["taken"] = len(out.Files)
	out.Counts["train"] = len(d.train)
	out.Counts["val"] = len(d.val)
	for _, s := range d.skipped {
		out.Counts[string(s.Reason)]++
		if s.Reason == repo.ReasonExactDup || s.Reason == repo.ReasonNearDuplicate {
			out.Duplicates++
		}
	}
	return out
}

func exampleTokens(exs []dataset.Example) int {
	n := 0
	for _, ex := range exs {
		n += len(ex.InputIDs)
	}
	return n
}

// evalRepoOptions are eval's source-tree flags.
type evalRepoOptions struct {
	DataDir         []string
	Include         []string
	Exclude         []string
	Lang            []string
	MaxFileBytes    int64
	DedupeThreshold float64
}

func addEvalRepoFlags(f *pflag.FlagSet, o *evalRepoOptions) {
	f.StringArrayVar(&o.DataDir, "data-dir", nil, "source tree to measure, one document per file as git sees it (DIR or DIR@REV), as train --train-dir reads it; repeatable")
	f.StringSliceVar(&o.Include, "include", nil, "with --data-dir: only files whose path matches one of these globs")
	f.StringSliceVar(&o.Exclude, "exclude", nil, "with --data-dir: skip files whose path matches one of these globs")
	f.StringSliceVar(&o.Lang, "lang", nil, "with --data-dir: only files of these languages, by extension (e.g. rust,python)")
	f.Int64Var(&o.MaxFileBytes, "max-file-bytes", 1<<20, "with --data-dir: skip files larger than this many bytes")
	f.Float64Var(&o.DedupeThreshold, "dedupe-threshold", 0.85, "with --data-dir: drop near-duplicate files at this estimated Jaccard similarity, in (0,1] (1 = exact only)")
}

// checkEvalRepo validates eval's data flags: exactly one of --data and --data-dir.
func checkEvalRepo(data string, o *evalRepoOptions) error {
	switch {
	case data == "" && len(o.DataDir) == 0:
		return usageErrorf("--data or --data-dir is required")
	case data != "" && len(o.DataDir) > 0:
		return usageErrorf("--data and --data-dir are two data sources; give one")
	case len(o.DataDir) == 0 && (len(o.Include)+len(o.Exclude)+len(o.Lang) > 0):
		return usageErrorf("--include, --exclude and --lang need --data-dir")
	case !(o.DedupeThreshold > 0 && o.DedupeThreshold <= 1):
		return usageErrorf("--dedupe-threshold %g: must be in (0, 1] (1 = exact duplicates only)", o.DedupeThreshold)
	case o.MaxFileBytes < 1:
		return usageErrorf("--max-file-bytes %d: must be a positive number of bytes", o.MaxFileBytes)
	}
	return nil
}

// evalRepoRows reads eval's --data-dir trees as documents, every file measured (no
// split), cut to --max-seq-len as training cuts them.
func evalRepoRows(ctx context.Context, stdio *IO, dir string, mc *modelcfg.Config, opts *evalOptions) ([]dataset.Row, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	o := opts.Repo
	d, err := loadRepoFiles(ctx, tok, repoDataOptions{Flag: "--data-dir", Trees: o.DataDir,
		Walk:   repo.Options{Include: o.Include, Exclude: o.Exclude, Lang: o.Lang, MaxFileBytes: o.MaxFileBytes},
		Dedupe: o.DedupeThreshold, MaxSeqLen: opts.MaxSeqLen})
	if err != nil {
		return nil, err
	}
	d.printReport(stdio.Err, o.DataDir, "measured")
	return d.trainRows, nil
}

// repoTrainName names --train-dir data in the model card.
func repoTrainName(cfg *config.Train) string {
	names := make([]string, len(cfg.TrainDir))
	for i, t := range cfg.TrainDir {
		names[i] = path.Clean(t)
	}
	return "--train-dir " + strings.Join(names, ", ")
}
