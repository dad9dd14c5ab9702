package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bidora/bidora/chattemplate"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/sample"
	"github.com/bidora/bidora/tokenizer"
)

// textPipeline turns data rows into token examples for one model: its tokenizer, its
// chat template (if any) and the prompt template settings.
type textPipeline struct {
	tok     *tokenizer.Tokenizer
	enc     *dataset.Encoder
	special tokenizer.Special
	// fim, when set, turns a share of the text rows into fill-in-the-middle examples.
	fim *fimSetup
}

// chatAdapter lets a chattemplate.Template render dataset messages.
type chatAdapter struct{ t *chattemplate.Template }

func (c chatAdapter) Render(msgs []dataset.Message, gen bool) (string, error) {
	out := make([]chattemplate.Message, len(msgs))
	for i, m := range msgs {
		out[i] = chattemplate.Message{Role: m.Role, Content: m.Content}
	}
	return c.t.Render(out, gen)
}

// newTextPipeline loads the tokenizer and chat template of the model in dir; mc is its
// config.json (vocab_size bounds every token id, eos_token_id joins the special tokens).
func newTextPipeline(dir string, mc *modelcfg.Config, template string, trainOnPrompt bool, maxSeqLen int) (*textPipeline, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	opts := dataset.EncodeOptions{Template: dataset.Template(template), TrainOnPrompt: trainOnPrompt, MaxSeqLen: maxSeqLen}
	ct, err := chattemplate.Load(dir)
	switch {
	case err == nil:
		if ct.HasTemplate() {
			opts.Chat = chatAdapter{ct}
		}
	case errors.Is(err, os.ErrNotExist):
		ct = nil
	default:
		return nil, fmt.Errorf("reading tokenizer_config.json: %w", err)
	}
	// generation_config.json's eos ids end turns too (generate stops at them); a file
	// generate cannot read is its concern, not training's.
	gc, _ := sample.LoadGenerationConfig(dir)
	sp, err := specialTokens(dir, tok, ct, mc, gc)
	if err != nil {
		return nil, err
	}
	opts.BOS, opts.EOS, opts.EndOfTurn = sp.BOS, sp.EOS, sp.EndOfTurn
	if mc != nil {
		opts.VocabSize = mc.VocabSize
	}
	enc, err := dataset.NewEncoder(tok, opts)
	var te *dataset.TemplateError
	if errors.As(err, &te) {
		return nil, usageErrorf("--template %s: %s", te.Template, te.Msg)
	}
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return &textPipeline{tok: tok, enc: enc, special: sp}, nil
}

// specialTokens resolves BOS, EOS and the end-of-turn ids of the model in dir: the one
// rule (tokenizer.ResolveSpecial) that train, eval and generate share. tmpl (the
// tokenizer_config.json), mc and gc may be nil.
func specialTokens(dir string, tok *tokenizer.Tokenizer, tmpl *chattemplate.Template, mc *modelcfg.Config, gc *sample.GenerationConfig) (tokenizer.Special, error) {
	var cfg tokenizer.SpecialConfig
	if tmpl != nil {
		cfg.EOSToken = tmpl.EOS()
	}
	if mc != nil {
		cfg.EOSTokenIDs = mc.EOSTokenIDs
	}
	if gc != nil {
		cfg.GenerationEOSTokenIDs = gc.EOSTokenIDs
	}
	sp, err := tok.ResolveSpecial(cfg)
	if err != nil {
		return sp, fmt.Errorf("%s: %w", dir, err)
	}
	return sp, nil
}

// dataReport counts what happened to the rows of one source.
type dataReport struct {
	Rows, Bad, Truncated, Empty int
	BadRows                     []dataset.BadRow
	// FIM counts the examples made fill-in-the-middle; FIMDesc says how.
	FIM     int
	FIMDesc string
}

func (r *dataReport) print(w io.Writer, name string) {
	fmt.Fprintf(w, "data: %s: %d rows", name, r.Rows)
	if r.Truncated > 0 {
		fmt.Fprintf(w, ", %d truncated to --max-seq-len", r.Truncated)
	}
	if r.FIMDesc != "" {
		fmt.Fprintf(w, ", %d as fill-in-the-middle (%s)", r.FIM, r.FIMDesc)
	}
	if r.Bad+r.Empty > 0 {
		fmt.Fprintf(w, ", %d skipped", r.Bad+r.Empty)
	}
	fmt.Fprintln(w)
	for i, b := range r.BadRows {
		if i == 5 {
			fmt.Fprintf(w, "  … and %d more (use --strict to stop at the first)\n", len(r.BadRows)-5)
			break
		}
		fmt.Fprintf(w, "  skipped %s\n", b)
	}
}

// loadRows reads a local file or the files of a HF dataset split.
func loadRows(ctx context.Context, stdio *IO, file, hubID, hubConfig, split string, opts dataset.ReadOptions) ([]dataset.Row, []dataset.BadRow, error) {
	paths := []string{file}
	if hubID != "" {
		c := hub.FromEnv()
		var err error
		if paths, err = c.DatasetFiles(ctx, hubID, hubConfig, split); err != nil {
			return nil, nil, fmt.Errorf("--dataset %s: %w", hubID, err)
		}
	}
	var rows []dataset.Row
	var bad []dataset.BadRow
	for _, p := range paths {
		o := opts
		if o.MaxRows > 0 {
			o.MaxRows -= len(rows)
			if o.MaxRows <= 0 {
				break
			}
		}
		r, b, err := dataset.ReadPath(ctx, p, o)
		rows, bad = append(rows, r...), append(bad, b...)
		if err != nil {
			if ctx != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return rows, bad, fmt.Errorf("reading %s: interrupted: %w", p, err)
			}
			return rows, bad, readErr(err)
		}
	}
	return rows, bad, nil
}

// readErr adds the flag that raises the row size limit to a too-long row's error.
func readErr(err error) error {
	var tl *dataset.TooLongError
	if errors.As(err, &tl) {
		return fmt.Errorf("%w (raise it with --max-line-bytes)", err)
	}
	return err
}

// encodeRows tokenises rows; rows without trainable tokens are skipped (or, strict, fatal).
func (p *textPipeline) encodeRows(ctx context.Context, rows []dataset.Row, strict bool, rep *dataReport) ([]dataset.Example, error) {
	var out []dataset.Example
	if p.fim != nil {
		rep.FIMDesc = p.fim.describe()
	}
	for i, r := range rows {
		if err := ctx.Err(); err != nil { // Ctrl-C while tokenising a large data set
			return nil, err
		}
		ex, trunc, isFIM, err := p.encodeRow(r, i)
		if isFIM && err == nil {
			rep.FIM++
		}
		if trunc {
			rep.Truncated++
		}
		if err != nil {
			b := dataset.BadRow{Source: r.Source, Reason: err.Error()}
			if strict {
				return nil, b
			}
			rep.Empty++
			rep.BadRows = append(rep.BadRows, b)
			continue
		}
		out = append(out, ex)
	}
	rep.Rows = len(out)
	return out, nil
}
