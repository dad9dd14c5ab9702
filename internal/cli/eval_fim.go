package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/fim"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
)

// evalFIMOptions are eval's infilling-metric flags.
type evalFIMOptions struct {
	On           bool
	Spans        int
	MaxNewTokens int
	Mode         string
}

func addEvalFIMFlags(f *pflag.FlagSet, o *evalFIMOptions) {
	f.BoolVar(&o.On, "fim", false, "also measure infilling on the text rows: greedy-decoded middles of held-out spans, exact match and edit similarity (needs a model with FIM tokens)")
	f.IntVar(&o.Spans, "fim-spans", 20, "spans per kind (a single line, a multi-line block) for --fim, drawn with a fixed seed")
	f.IntVar(&o.MaxNewTokens, "fim-max-new-tokens", 64, "most tokens decoded per --fim span")
	f.StringVar(&o.Mode, "fim-mode", "psm", "--fim prompt order: psm or spm, as the model was trained")
}

func checkEvalFIMFlags(o *evalFIMOptions) error {
	switch {
	case !o.On:
		return nil
	case o.Spans < 1:
		return usageErrorf("--fim-spans must be at least 1, got %d", o.Spans)
	case o.MaxNewTokens < 1:
		return usageErrorf("--fim-max-new-tokens must be at least 1, got %d", o.MaxNewTokens)
	case o.Mode != string(fim.PSM) && o.Mode != string(fim.SPM):
		return usageErrorf("--fim-mode must be psm or spm, got %q", o.Mode)
	}
	return nil
}

// fimSpanResult is the infilling score of one span kind.
type fimSpanResult struct {
	Spans          int     `json:"spans"`
	ExactMatch     float64 `json:"exact_match"`
	EditSimilarity float64 `json:"edit_similarity"`
}

// fimEvalResult is the "fim" object of eval --json.
type fimEvalResult struct {
	Mode  string        `json:"mode"`
	Line  fimSpanResult `json:"line"`
	Block fimSpanResult `json:"block"`
}

// fimSeed draws eval's spans: the same data gives the same spans on every run.
const fimSeed = 0x5EED_F1

// fimTask is one held-out span.
type fimTask struct {
	header, prefix, middle, suffix string
}

// drawFIMTasks draws n spans of kind from the text rows that have one.
func drawFIMTasks(rows []dataset.Row, kind fim.SpanKind, n int) []fimTask {
	var texts []dataset.Row
	probe := rand.New(rand.NewPCG(0, 0))
	for _, r := range rows {
		if r.Kind != dataset.KindText {
			continue
		}
		if _, _, _, ok := fim.RandomSpan(r.Text, kind, probe); ok {
			texts = append(texts, r)
		}
	}
	if len(texts) == 0 {
		return nil
	}
	stream := uint64(1)
	if kind == fim.MultiLine {
		stream = 2
	}
	rng := rand.New(rand.NewPCG(fimSeed, stream))
	tasks := make([]fimTask, n)
	for i := range tasks {
		r := texts[rng.IntN(len(texts))]
		p, m, s, _ := fim.RandomSpan(r.Text, kind, rng)
		tasks[i] = fimTask{header: r.Header, prefix: p, middle: m, suffix: s}
	}
	return tasks
}

// fitContext trims the prefix from its start and the suffix from its end, at line
// breaks where there are some, until the prompt of t fits in budget tokens.
func fitContext(b *fim.Builder, t fimTask, mode fim.Mode, budget int) ([]int, error) {
	for {
		ids, err := b.Prompt(t.header, t.prefix, t.suffix, mode)
		if err != nil || len(ids) <= budget || (t.prefix == "" && t.suffix == "") {
			return ids, err
		}
		if len(t.prefix) >= len(t.suffix) {
			cut := max(1, len(t.prefix)/2)
			if nl := strings.IndexByte(t.prefix[cut:], '\n'); nl >= 0 && cut+nl+1 < len(t.prefix) {
				cut += nl + 1
			}
			for cut < len(t.prefix) && !utf8.RuneStart(t.prefix[cut]) {
				cut++
			}
			t.prefix = t.prefix[cut:]
		} else {
			t.suffix = cutText(t.suffix, len(t.suffix)/2)
		}
	}
}

// evalFIM is eval --fim made ready before the weights load: the tokenizer's FIM tokens
// found, the spans drawn.
type evalFIM struct {
	o      *evalFIMOptions
	pipe   *textPipeline
	b      *fim.Builder
	stops  []int
	budget int // prompt tokens that leave room for the middle
	line   []fimTask
	block  []fimTask
}

// prepareEvalFIM checks that the model can infill and draws --fim-spans spans per kind
// from the text rows. A tokenizer without FIM tokens, or data without a text row to
// infill, is a usage error naming --fim.
func prepareEvalFIM(dir string, mc *modelcfg.Config, rows []dataset.Row, opts *evalOptions) (*evalFIM, error) {
	o := &opts.fim
	pipe, err := newTextPipeline(dir, mc, opts.Template, opts.TrainOnPrompt, opts.MaxSeqLen)
	if err != nil {
		return nil, err
	}
	b, err := newFIMBuilder(pipe, "--fim")
	if err != nil {
		return nil, err
	}
	budget := opts.MaxSeqLen - o.MaxNewTokens
	if mc.MaxPositionEmbeddings > 0 {
		budget = min(budget, mc.MaxPositionEmbeddings-o.MaxNewTokens)
	}
	if budget < 8 {
		return nil, usageErrorf("--fim-max-new-tokens %d leaves no room for a prompt in --max-seq-len %d", o.MaxNewTokens, opts.MaxSeqLen)
	}
	e := &evalFIM{o: o, pipe: pipe, b: b, stops: append(b.Stops(), pipe.special.EndOfTurn...), budget: budget,
		line: drawFIMTasks(rows, fim.SingleLine, o.Spans), block: drawFIMTasks(rows, fim.MultiLine, o.Spans)}
	if len(e.line) == 0 {
		return nil, usageErrorf("--fim: the data has no text rows with a non-blank line to infill")
	}
	return e, nil
}

// run greedy-decodes the middle of each span with m and scores it against the held-out
// text. Text is compared with trailing white space removed on both sides.
func (e *evalFIM) run(ctx context.Context, m *model.Model) (*fimEvalResult, error) {
	o, b := e.o, e.b
	cache, err := m.NewKVCache(0)
	if err != nil {
		return nil, err
	}
	res := &fimEvalResult{Mode: o.Mode}
	for _, k := range []struct {
		kind  fim.SpanKind
		out   *fimSpanResult
		tasks []fimTask
	}{{fim.SingleLine, &res.Line, e.line}, {fim.MultiLine, &res.Block, e.block}} {
		tasks := k.tasks
		if len(tasks) == 0 {
			continue // no text of two lines: no block spans
		}
		var exact, sim float64
		for i, t := range tasks {
			ids, err := fitContext(b, t, fim.Mode(o.Mode), e.budget)
			if err != nil {
				return nil, err
			}
			gen, err := m.Generate(ctx, cache, ids, model.GenerateOptions{MaxNewTokens: o.MaxNewTokens, EOS: e.stops})
			if err != nil {
				return nil, fmt.Errorf("--fim: %s span %d: %w", k.kind, i+1, err)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			got := strings.TrimRight(b.DecodeMiddle(e.pipe.tok, gen.Tokens), " \t\r\n")
			want := strings.TrimRight(t.middle, " \t\r\n")
			if got == want {
				exact++
			}
			sim += fim.EditSimilarity(got, want)
		}
		n := float64(len(tasks))
		*k.out = fimSpanResult{Spans: len(tasks), ExactMatch: exact / n, EditSimilarity: sim / n}
	}
	return res, nil
}

// print writes the infilling scores under eval's loss line.
func (r *fimEvalResult) print(w io.Writer) {
	for _, k := range []struct {
		name string
		s    fimSpanResult
	}{{"line", r.Line}, {"block", r.Block}} {
		if k.s.Spans == 0 {
			fmt.Fprintf(w, "fim %-5s  no spans (no text of two lines)\n", k.name)
			continue
		}
		fmt.Fprintf(w, "fim %-5s  exact match %.4f  edit similarity %.4f  spans %d  (%s, greedy)\n", k.name, k.s.ExactMatch, k.s.EditSimilarity, k.s.Spans, r.Mode)
	}
}
