package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/internal/progress"
	"github.com/bidora/bidora/tokenizer"
)

// resolveTokenizerRef turns a --tokenizer argument into a local model directory or
// tokenizer.json path: a local path is used as is, a HF repo id ("org/name[@rev]") has its
// tokenizer files downloaded into the HF cache (or found there offline). Tests replace it.
var resolveTokenizerRef = func(ctx context.Context, stdio *IO, ref string) (string, error) {
	c := hub.FromEnv()
	c.Progress = progress.New(stdio.Err, stdio.IsTerminal)
	path, err := c.ResolveTokenizer(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("--tokenizer %s: %w", ref, err)
	}
	return path, nil
}

type tokenizeOptions struct {
	Tokenizer  string
	Text       string
	TextSet    bool
	JSONL      string
	AddSpecial bool
	JSON       bool
	// MaxLineBytes bounds one --jsonl line.
	MaxLineBytes int
}

func newTokenizeCmd(stdio *IO) *cobra.Command {
	opts := &tokenizeOptions{}
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Turn text into token ids with a model's tokenizer",
		Long: `tokenize encodes text with a HuggingFace tokenizer.json (byte-level BPE such as Qwen2/3 and
Llama-3, or byte-fallback BPE such as Llama-2 and Mistral). Ids equal HF tokenizers'
encode(text, add_special_tokens=False); added and special tokens written in the text are
recognised. --add-special also applies the post-processor (BOS and the like).

With --jsonl, rows {"text": ...} are read (one per line, "-" = stdin) and rows {"ids": [...]}
are written in the same order, one per input row, as soon as each row is read. A bad row is
reported on stderr with file:line, gets {"error": ...} in the output, and makes the exit
status 1 at the end. A line longer than --max-line-bytes stops the run with an error.`,
		Example: `  bidora tokenize --tokenizer ../shared/tokenizers/qwen3 --text 'fn main() {}'
  bidora tokenize --tokenizer ./my-model --text 'Hello' --add-special --json
  bidora tokenize --tokenizer ./tokenizer.json --jsonl data.jsonl > ids.jsonl
  echo '{"text":"hi"}' | bidora tokenize --tokenizer ../shared/tokenizers/qwen3 --jsonl -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.TextSet = cmd.Flags().Changed("text")
			return runTokenize(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Tokenizer, "tokenizer", "", "model directory, tokenizer.json path or HF repo id")
	f.StringVar(&opts.Text, "text", "", "text to encode")
	f.StringVar(&opts.JSONL, "jsonl", "", `JSONL file of {"text": ...} rows ("-" reads stdin)`)
	f.BoolVar(&opts.AddSpecial, "add-special", false, "apply the post-processor (BOS and the like)")
	f.BoolVar(&opts.JSON, "json", false, `with --text: print {"ids": [...], "tokens": [...], "count": n}`)
	f.IntVar(&opts.MaxLineBytes, "max-line-bytes", dataset.DefaultMaxLineBytes, "longest --jsonl line in bytes")
	return cmd
}

func runTokenize(ctx context.Context, stdio *IO, opts *tokenizeOptions) error {
	if opts.Tokenizer == "" {
		return usageErrorf("--tokenizer is required (a model directory, tokenizer.json path or HF repo id)")
	}
	if opts.TextSet == (opts.JSONL != "") {
		return usageErrorf("give exactly one of --text or --jsonl")
	}
	if opts.MaxLineBytes < 0 {
		return usageErrorf("--max-line-bytes must be positive (0 = the default %s), got %d", dataset.FormatBytes(dataset.DefaultMaxLineBytes), opts.MaxLineBytes)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	path, err := resolveTokenizerRef(ctx, stdio, opts.Tokenizer)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return err
	}
	encode := tok.Encode
	if opts.AddSpecial {
		encode = tok.EncodeWithSpecial
	}
	if opts.TextSet {
		return writeTextResult(stdio.Out, tok, encode(opts.Text), opts.JSON)
	}
	name, in := opts.JSONL, stdio.In
	if name == "-" {
		name = "<stdin>"
	} else {
		f, err := dataset.OpenFile(ctx, opts.JSONL)
		if err != nil {
			return fmt.Errorf("--jsonl: %w", err)
		}
		defer f.Close()
		in = f
	}
	in, stop := dataset.ContextReader(ctx, in)
	defer stop()
	return tokenizeJSONL(ctx, stdio, name, in, opts.MaxLineBytes, encode)
}

func writeTextResult(w io.Writer, tok *tokenizer.Tokenizer, ids []int, asJSON bool) error {
	if asJSON {
		tokens := make([]string, len(ids))
		for k, id := range ids {
			tokens[k], _ = tok.IDToToken(id)
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(map[string]any{"ids": ids, "tokens": tokens, "count": len(ids)})
	}
	_, err := w.Write(appendIDsRow(nil, ids))
	return err
}

// appendIDsRow appends {"ids":[...]} and a newline.
func appendIDsRow(b []byte, ids []int) []byte {
	b = append(b, `{"ids":[`...)
	for k, id := range ids {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, "]}\n"...)
}

// tokenizeJSONL streams rows: each output row is flushed as soon as no more input is
// already buffered, so a pipe sees an answer per line while a file is written in bulk.
func tokenizeJSONL(ctx context.Context, stdio *IO, name string, in io.Reader, maxLine int, encode func(string) []int) error {
	r := dataset.NewLineReader(in, name, maxLine)
	w := bufio.NewWriterSize(stdio.Out, 1<<16)
	var buf []byte
	bad := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, readErr := r.Next()
		lineNo := r.Line()
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if readErr == nil {
			trimmed := trimSpaceBytes(line)
			if len(trimmed) > 0 {
				var row struct {
					Text *string `json:"text"`
				}
				err := json.Unmarshal(trimmed, &row)
				if err == nil && row.Text == nil {
					err = errors.New(`want an object with a string "text" field`)
				}
				if err != nil {
					bad++
					msg := fmt.Sprintf("%s:%d: %v", name, lineNo, err)
					fmt.Fprintf(stdio.Err, "bidora: %s\n", msg)
					var eb bytes.Buffer
					enc := json.NewEncoder(&eb)
					enc.SetEscapeHTML(false)
					_ = enc.Encode(map[string]string{"error": msg})
					buf = append(buf[:0], eb.Bytes()...)
				} else {
					buf = appendIDsRow(buf[:0], encode(*row.Text))
				}
				if _, err := w.Write(buf); err != nil {
					return fmt.Errorf("writing output: %w", err)
				}
			}
		}
		if readErr != nil || r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		if readErr == io.EOF {
			break
		}
		if readErr != nil {
			var tl *dataset.TooLongError
			if errors.As(readErr, &tl) {
				return fmt.Errorf("%w (raise it with --max-line-bytes)", readErr)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s: %w", name, readErr)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%s: %d bad row(s), see above", name, bad)
	}
	return nil
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}
