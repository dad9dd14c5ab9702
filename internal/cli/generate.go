package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/chattemplate"
	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/sample"
	"github.com/bidora/bidora/tokenizer"
)

type generateOptions struct {
	Model             string
	Adapter           string
	Quantization      string
	BaseDType         string
	Compute           string
	Prompt            string
	Chat              bool
	System            string
	MaxNewTokens      int
	Temperature       float64
	TopK              int
	TopP              float64
	RepetitionPenalty float64
	Seed              uint64
	Stop              []string
	Threads           int
	JSON              bool
	infill            infillOptions

	promptSet bool
	changed   func(name string) bool
}

// defaultMaxNewTokens is --max-new-tokens when neither the flag nor the model's
// generation_config.json sets it.
const defaultMaxNewTokens = 256

// streamContext is how many prompt tokens are decoded along with a plain continuation
// so that its first token keeps the spacing it has in the full text.
const streamContext = 8

func newGenerateCmd(stdio *IO) *cobra.Command {
	opts := &generateOptions{}
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Sample text from a base model (+ adapter), plain or with its chat template",
		Long: `generate continues a prompt with a base model or base + PEFT adapter, decoding token by
token with a key/value cache, and streams the text as it comes.

Plain mode (--prompt TEXT) encodes the text as is, with the tokenizer's special tokens
(BOS) added as the tokenizer does. --chat applies the model's chat template with the
assistant's generation prompt: with --prompt it answers that one message; without it,
it reads one user message per line from stdin and keeps the conversation (an
interactive session on a terminal; Ctrl-D ends it).

Sampling defaults come from the model's generation_config.json as transformers uses
them (greedy unless it sets do_sample; then its temperature, top_k, top_p), and each
flag overrides its field. --temperature 0 is greedy decoding. Generation stops at an
end-of-sequence token (config.json, generation_config.json and the chat template's EOS),
at a --stop string (cut from the output), after --max-new-tokens, or on Ctrl-C, which
stops cleanly and keeps what was generated.

--json prints {"text", "tokens", "prompt_tokens", "prefill_tokens_per_s",
"decode_tokens_per_s", "stop_reason"} at the end instead of streaming (one line per
turn in a chat session); stop_reason is eos, stop, length or interrupted.

Infilling (fill-in-the-middle, for code models with FIM tokens: Qwen2.5-Coder, CodeLlama,
DeepSeek-Coder, StarCoder): --prefix-file and --suffix-file give the text before and
after the gap (or --fim takes them from a <FILL> marker in --prompt); generate builds
the model's FIM prompt, stops at its end-of-middle token and prints only the middle.`,
		Example: `  bidora generate --model ../shared/models/code14m --prompt 'fn main() {' --max-new-tokens 64
  bidora generate --model Qwen/Qwen2.5-Coder-1.5B-Instruct --chat --prompt 'Write a Rust hello world'
  bidora generate --model qwen2.5-coder-1.5b --adapter ./output --chat --system 'You are terse.'
  bidora generate --model ./merged --prompt 'def fib(n):' --temperature 0.8 --top-p 0.95 --seed 1 --stop '\n\n' --json
  bidora generate --model qwen2.5-coder-1.5b --prefix-file before.rs --suffix-file after.rs --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.promptSet = cmd.Flags().Changed("prompt")
			opts.changed = cmd.Flags().Changed
			return runGenerate(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "base model: local HF directory, HF repo id or catalog preset")
	f.StringVar(&opts.Adapter, "adapter", "", "PEFT adapter directory or HF repo id (optional)")
	f.StringVar(&opts.Quantization, "quantization", "auto", quantUsage)
	f.StringVar(&opts.BaseDType, "base-dtype", "auto", baseDTypeUsage)
	f.StringVar(&opts.Compute, "compute", "auto", config.ComputeUsage+"; here it speeds up reading the prompt (prefill), while new tokens, one row at a time, use f32 GEMVs either way")
	f.StringVar(&opts.Prompt, "prompt", "", "the prompt (plain text, or the user message with --chat)")
	f.BoolVar(&opts.Chat, "chat", false, "apply the chat template; without --prompt, read messages from stdin")
	f.StringVar(&opts.System, "system", "", "system message (with --chat)")
	f.IntVar(&opts.MaxNewTokens, "max-new-tokens", defaultMaxNewTokens, "most tokens to generate per reply (0 = until EOS or the context is full; default from generation_config.json when set there)")
	f.Float64Var(&opts.Temperature, "temperature", 0, "sampling temperature, 0 = greedy (default from generation_config.json)")
	f.IntVar(&opts.TopK, "top-k", 0, "sample among the k most likely tokens, 0 = all (default from generation_config.json, else 50)")
	f.Float64Var(&opts.TopP, "top-p", 1, "nucleus sampling probability mass, 1 = all (default from generation_config.json)")
	f.Float64Var(&opts.RepetitionPenalty, "repetition-penalty", 1, "penalty for tokens already in the context, 1 = none (default from generation_config.json)")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed of the sampler")
	f.StringArrayVar(&opts.Stop, "stop", nil, "stop when this text appears (repeatable; it is cut from the output)")
	f.IntVar(&opts.Threads, "threads", 0, "worker threads (0 = all cores)")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON instead of streaming it")
	addInfillFlags(f, &opts.infill)
	return cmd
}

// generateResult is the JSON output of generate.
type generateResult struct {
	Text         string  `json:"text"`
	Tokens       int     `json:"tokens"`
	PromptTokens int     `json:"prompt_tokens"`
	PrefillTPS   float64 `json:"prefill_tokens_per_s"`
	DecodeTPS    float64 `json:"decode_tokens_per_s"`
	StopReason   string  `json:"stop_reason"`
	Compute      string  `json:"compute"` // the resolved --compute: bf16 or f32
}

// checkGenerateFlags validates the flags that do not need the model.
func checkGenerateFlags(opts *generateOptions) error {
	q, err := parseQuantFlag(opts.Quantization)
	if err != nil {
		return err
	}
	opts.Quantization = q
	d, err := parseBaseDTypeFlag(opts.BaseDType)
	if err != nil {
		return err
	}
	opts.BaseDType = string(d)
	c, err := parseComputeFlag(opts.Compute)
	if err != nil {
		return err
	}
	opts.Compute = string(c)
	if err := checkInfillFlags(opts); err != nil {
		return err
	}
	switch {
	case opts.Model == "":
		return usageErrorf("--model is required")
	case !opts.Chat && !opts.promptSet && !opts.infill.on():
		return usageErrorf("--prompt is required (or --chat for an interactive session)")
	case opts.promptSet && opts.Prompt == "":
		return usageErrorf("--prompt must not be empty")
	case opts.System != "" && !opts.Chat:
		return usageErrorf("--system needs --chat")
	case opts.MaxNewTokens < 0:
		return usageErrorf("--max-new-tokens must be 0 (no limit) or positive, got %d", opts.MaxNewTokens)
	case !(opts.Temperature >= 0) || math.IsInf(opts.Temperature, 0):
		return usageErrorf("--temperature must be a finite number ≥ 0, got %v", opts.Temperature)
	case opts.TopK < 0:
		return usageErrorf("--top-k must be 0 (no limit) or positive, got %d", opts.TopK)
	case !(opts.TopP > 0 && opts.TopP <= 1):
		return usageErrorf("--top-p must be in (0, 1], got %v", opts.TopP)
	case !(opts.RepetitionPenalty > 0) || math.IsInf(opts.RepetitionPenalty, 0):
		return usageErrorf("--repetition-penalty must be a finite number > 0, got %v", opts.RepetitionPenalty)
	case opts.Threads < 0:
		return usageErrorf("--threads must be 0 (all cores) or positive, got %d", opts.Threads)
	}
	for _, s := range opts.Stop {
		if s == "" {
			return usageErrorf("--stop must not be empty")
		}
	}
	return nil
}

// generator is a loaded model ready to answer prompts.
type generator struct {
	stdio   *IO
	opts    *generateOptions
	m       *model.Model
	tok     *tokenizer.Tokenizer
	tmpl    *chattemplate.Template
	cache   *model.KVCache
	sampler *sample.Sampler
	special tokenizer.Special
	eos     []int // where a reply stops: the end-of-turn ids training uses
	maxNew  int
	exact   bool // print the text as generated, with no line break added (infilling)
}

func runGenerate(ctx context.Context, stdio *IO, opts *generateOptions) error {
	if err := checkGenerateFlags(opts); err != nil {
		return err
	}
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	dir, err := resolveModelDir(ctx, stdio, "--model", opts.Model)
	if err != nil {
		return err
	}
	var infill, infillStops, infillContext []int
	if opts.infill.on() {
		if infill, infillStops, infillContext, err = infillPrompt(dir, opts); err != nil {
			return err
		}
	}
	g, err := loadGenerator(ctx, stdio, opts, dir)
	if err != nil {
		return err
	}
	defer g.m.Close()
	if infill != nil {
		g.eos, g.exact = append(g.eos, infillStops...), true
		_, err := g.reply(ctx, infill, infillContext)
		return err
	}
	if !opts.Chat {
		ids := g.encodePlain(opts.Prompt)
		_, err := g.reply(ctx, ids, tail(ids, streamContext))
		return err
	}
	msgs := initialMessages(opts)
	if opts.promptSet {
		_, err := g.chatTurn(ctx, msgs, opts.Prompt)
		return err
	}
	return g.repl(ctx, msgs)
}

func loadGenerator(ctx context.Context, stdio *IO, opts *generateOptions, dir string) (*generator, error) {
	g := &generator{stdio: stdio, opts: opts}
	var err error
	if g.tok, err = tokenizer.Load(dir); err != nil {
		return nil, err
	}
	if g.tmpl, err = chattemplate.Load(dir); err != nil {
		return nil, err
	}
	if opts.Chat && !g.tmpl.HasTemplate() {
		return nil, usageErrorf("--chat: %s has no chat template (tokenizer_config.json chat_template); use --prompt without --chat", dir)
	}
	mc, err := modelcfg.Load(dir)
	if err != nil {
		return nil, err
	}
	gc, err := sample.LoadGenerationConfig(dir)
	if err != nil {
		return nil, err
	}
	// Without any EOS, a reply runs to --max-new-tokens (or a --stop string).
	g.special, _ = specialTokens(dir, g.tok, g.tmpl, mc, gc)
	g.eos = g.special.EndOfTurn
	if opts.Chat {
		// Render the opening of the conversation now, so that a template that refuses
		// it (a system message it does not support) fails before the weights load.
		if _, err := g.tmpl.Render(append(initialMessages(opts), chattemplate.Message{Role: "user", Content: cmp.Or(opts.Prompt, "hello")}), true); err != nil {
			return nil, err
		}
	}
	scfg := samplingConfig(gc, opts)
	if g.sampler, err = sample.New(scfg); err != nil {
		return nil, err
	}
	g.maxNew = opts.MaxNewTokens
	if !opts.changed("max-new-tokens") && gc.MaxNewTokens != nil && *gc.MaxNewTokens > 0 {
		g.maxNew = *gc.MaxNewTokens
	}
	base, _ := resolveBaseDType(model.BaseDType(opts.BaseDType), dir, mc)
	kind := resolveAutoQuant(ctx, stdio.Err, opts.Quantization, mc, memplan.Settings{BatchSize: 1,
		SeqLen: max(256, min(mc.MaxPositionEmbeddings, 4096)), GradCheckpointing: true, BaseDType: string(base)}, ".")
	if g.m, err = loadQuantModel(stdio.Err, dir, kind, model.Options{BaseDType: base, Compute: model.Compute(opts.Compute)}); err != nil {
		return nil, err
	}
	if opts.Adapter != "" {
		adir, err := resolveModelDir(ctx, stdio, "--adapter", opts.Adapter)
		if err != nil {
			g.m.Close()
			return nil, err
		}
		if err := g.m.LoadAdapter(adir); err != nil {
			g.m.Close()
			return nil, fmt.Errorf("--adapter %s: %w", opts.Adapter, err)
		}
	}
	if g.cache, err = g.m.NewKVCache(0); err != nil {
		g.m.Close()
		return nil, err
	}
	return g, nil
}

// samplingConfig starts from generation_config.json and applies the flags given.
func samplingConfig(gc *sample.GenerationConfig, opts *generateOptions) sample.Config {
	c := gc.Sampling()
	set := func(name string, apply func()) {
		if opts.changed(name) {
			apply()
		}
	}
	set("temperature", func() { c.Temperature = opts.Temperature })
	set("top-k", func() { c.TopK = opts.TopK })
	set("top-p", func() { c.TopP = opts.TopP })
	set("repetition-penalty", func() { c.RepetitionPenalty = opts.RepetitionPenalty })
	c.Seed = opts.Seed
	return c
}

// initialMessages is the conversation before the first user message.
func initialMessages(opts *generateOptions) []chattemplate.Message {
	if opts.System == "" {
		return nil
	}
	return []chattemplate.Message{{Role: "system", Content: opts.System}}
}

// encodePlain encodes a plain prompt as training encodes a text row: the BOS the
// tokenizer's post-processor puts first, then the text.
func (g *generator) encodePlain(text string) []int {
	return slices.Concat(g.special.BOS, g.tok.Encode(text))
}

func tail(ids []int, n int) []int { return ids[max(0, len(ids)-n):] }

// chatTurn renders the conversation plus a user message and answers it.
func (g *generator) chatTurn(ctx context.Context, msgs []chattemplate.Message, user string) (string, error) {
	msgs = append(msgs, chattemplate.Message{Role: "user", Content: user})
	text, err := g.tmpl.Render(msgs, true)
	if err != nil {
		return "", err // it names the chat template and its line
	}
	return g.reply(ctx, g.tok.Encode(text), nil)
}

// replMaxLine bounds one message line of a chat session: the chat template builds no
// longer string, and a longer message could not be rendered.
const replMaxLine = 16 << 20

// repl reads user messages from stdin, one per line, keeping the conversation. EOF or
// Ctrl-C ends it.
func (g *generator) repl(ctx context.Context, msgs []chattemplate.Message) error {
	interactive := isTerminal(g.stdio.In)
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		lr := dataset.NewLineReader(g.stdio.In, "stdin", replMaxLine)
		for {
			line, err := lr.Next()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				readErr <- err
				close(lines)
				return
			}
			select {
			case lines <- string(line):
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		if interactive {
			fmt.Fprint(g.stdio.Err, "> ")
		}
		var line string
		select {
		case <-ctx.Done():
			fmt.Fprintln(g.stdio.Err)
			return nil
		case l, ok := <-lines:
			if !ok {
				if interactive {
					fmt.Fprintln(g.stdio.Err)
				}
				if err := <-readErr; err != nil {
					var tl *dataset.TooLongError
					if errors.As(err, &tl) {
						return fmt.Errorf("%w: a chat message is one line of stdin", err)
					}
					return fmt.Errorf("reading stdin: %w", err)
				}
				return nil
			}
			line = strings.TrimSpace(l)
		}
		if line == "" {
			continue
		}
		answer, err := g.chatTurn(ctx, msgs, line)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // Ctrl-C: the partial answer is out; end the session cleanly
		}
		msgs = append(msgs, chattemplate.Message{Role: "user", Content: line}, chattemplate.Message{Role: "assistant", Content: answer})
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// reply generates from prompt ids, streaming the text (or printing JSON at the end),
// and returns the text. context is the prompt tail decoded along with a continuation
// (nil for a chat reply).
func (g *generator) reply(ctx context.Context, ids, context []int) (string, error) {
	stream := sample.NewStream(g.tok, context, g.opts.Stop)
	out := g.stdio.Out
	write := func(s string) error {
		if g.opts.JSON || s == "" {
			return nil
		}
		_, err := io.WriteString(out, s)
		return err
	}
	res, err := g.m.Generate(ctx, g.cache, ids, model.GenerateOptions{
		MaxNewTokens: g.maxNew,
		Sampler:      g.sampler,
		EOS:          g.eos,
		OnToken: func(id int) (bool, error) {
			text, stop := stream.Push(id)
			return stop, write(text)
		},
	})
	if err != nil {
		return "", err
	}
	if err := write(stream.Flush()); err != nil {
		return "", err
	}
	text := stream.Text()
	if g.opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return text, enc.Encode(generateResult{Text: text, Tokens: len(res.Tokens), PromptTokens: len(ids),
			PrefillTPS: round2(res.PrefillTokensPerSecond()), DecodeTPS: round2(res.DecodeTokensPerSecond()), StopReason: res.StopReason,
			Compute: string(g.m.Compute())})
	}
	if !g.exact && !strings.HasSuffix(text, "\n") {
		if err := write("\n"); err != nil {
			return "", err
		}
	}
	if g.stdio.IsTerminal {
		fmt.Fprintf(g.stdio.Err, "[%d tokens, stop: %s, prefill %.1f tokens/s, decode %.1f tokens/s]\n",
			len(res.Tokens), res.StopReason, res.PrefillTokensPerSecond(), res.DecodeTokensPerSecond())
	}
	return text, nil
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
