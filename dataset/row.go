// Package dataset reads fine-tuning data (the row kinds of docs/architecture.md), turns rows
// into token ids with loss masks through a prompt template, splits off validation data
// and groups examples into batches.
//
// ReadPath reads a file in the format its extension names (JSONL, a JSON array, CSV/TSV,
// parquet, or a text file as one text row; see FormatOf). Every read is bounded (a row
// is at most ReadOptions.MaxLineBytes) and cancellable (ReadOptions.Context), and a
// row costs about its own size: it is decoded without reflection and, with MaxSeqLen,
// only the prefix of its text that the kept tokens need is tokenised.
//
// Row kinds, the first key set that matches wins:
//
//	{"messages":[{"role":"system|user|assistant","content":…},…]}  chat; loss on assistant turns
//	{"instruction":…, "input":…, "output":…}                       instruction; loss on output
//	{"prompt":…, "completion":…}                                    completion; loss on completion
//	{"code":…} or {"text":…}                                        plain; loss on everything
//	{"input_ids":[…], "labels":[…]}                                 pre-tokenised, HF convention
//
// Labels follow the HF convention: they are aligned with input_ids, the model at position
// t predicts labels[t+1], and -100 marks a token that is not trained on.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// IgnoreIndex marks a label that contributes no loss (HF's -100).
const IgnoreIndex = -100

// Kind says which of the five row shapes a row has.
type Kind int

const (
	KindChat        Kind = iota + 1 // messages
	KindInstruction                 // instruction / input / output
	KindCompletion                  // prompt / completion
	KindText                        // text or code
	KindTokens                      // input_ids (+ labels)
)

func (k Kind) String() string {
	switch k {
	case KindChat:
		return "chat"
	case KindInstruction:
		return "instruction"
	case KindCompletion:
		return "completion"
	case KindText:
		return "text"
	case KindTokens:
		return "tokens"
	}
	return "unknown"
}

// Message is one turn of a chat row.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Row is one parsed data row. Source says where it came from ("file.jsonl:12").
type Row struct {
	Kind        Kind
	Source      string
	Messages    []Message
	Instruction string
	Input       string
	Output      string
	Prompt      string
	Completion  string
	Text        string
	// Header goes before Text in a text row and is never cut by fill-in-the-middle: a
	// source file's path line (repository datasets), for instance. Empty for rows read
	// from data files.
	Header   string
	InputIDs []int
	Labels   []int // nil means "same as InputIDs"
}

// BadRow is a row that could not be used, with the reason.
type BadRow struct {
	Source string // file:line
	Reason string
}

func (b BadRow) Error() string { return b.Source + ": " + b.Reason }

// Fields maps extra column names onto the row kinds (for HF datasets whose columns are
// named differently). Empty fields keep the default names.
type Fields struct {
	Text, Prompt, Completion, Messages string
}

// DefaultMaxLineBytes is ReadOptions.MaxLineBytes when it is 0.
const DefaultMaxLineBytes = 64 << 20

// ReadOptions controls reading.
type ReadOptions struct {
	// Strict makes the first bad row an error; otherwise bad rows are skipped and reported.
	Strict bool
	// MaxRows stops after this many good rows (0 = all).
	MaxRows int
	Fields  Fields
	// MaxLineBytes bounds one row: a JSONL line, an element of a JSON array, a CSV record,
	// a whole text file (0 = DefaultMaxLineBytes). A longer one is an error naming
	// file:line (a *TooLongError), never a skipped row: such a file is not the format its
	// name says, or the limit is too low for it.
	MaxLineBytes int
	// Context, when set, cancels reading: the read returns its error (context.Canceled)
	// promptly, between rows and also from a read that blocks (a FIFO, a pipe, stdin).
	Context context.Context
}

func (o ReadOptions) maxLine() int {
	if o.MaxLineBytes > 0 {
		return o.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

// ReadFile reads a JSONL file of rows. Bad rows are returned in bad (or, with Strict,
// the first one is returned as the error). ReadPath reads the other formats too.
func ReadFile(path string, opts ReadOptions) (rows []Row, bad []BadRow, err error) {
	f, err := openData(opts.Context, path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return Read(f, path, opts)
}

// Read reads JSONL rows from r; name is used in messages (file name). Blank lines are
// skipped; a UTF-8 byte order mark before the first row is ignored.
func Read(r io.Reader, name string, opts ReadOptions) (rows []Row, bad []BadRow, err error) {
	r, stop := readerWithContext(opts.Context, r)
	defer stop()
	return readJSONL(r, name, opts)
}

var utf8BOM = []byte("\xEF\xBB\xBF")

// rowSink collects rows and bad rows under the options' Strict and MaxRows.
type rowSink struct {
	opts ReadOptions
	rows []Row
	bad  []BadRow
}

// add records a parsed row (or its parse error) from src; done reports that MaxRows
// is reached, err is the bad row under Strict.
func (s *rowSink) add(row Row, perr error, src string) (done bool, err error) {
	if perr != nil {
		b := BadRow{Source: src, Reason: perr.Error()}
		if s.opts.Strict {
			return true, b
		}
		s.bad = append(s.bad, b)
		return false, nil
	}
	row.Source = src
	s.rows = append(s.rows, row)
	return s.opts.MaxRows > 0 && len(s.rows) >= s.opts.MaxRows, nil
}

// ParseRow decodes one JSON object into a Row, choosing the first matching kind.
func ParseRow(data []byte, fields Fields) (Row, error) {
	ms, err := splitObject(data)
	if err != nil {
		return Row{}, err
	}
	return parseMembers(ms, fields)
}

// parseMembers builds a Row from an object's members (of a JSON line, a CSV record or a
// parquet record), choosing the first matching kind.
func parseMembers(obj members, fields Fields) (Row, error) {
	name := func(custom, def string) string {
		if custom != "" {
			return custom
		}
		return def
	}
	var row Row
	if key := name(fields.Messages, "messages"); obj.has(key) {
		row.Kind = KindChat
		v, _ := obj.get(key)
		if v.isText {
			return row, fmt.Errorf(`%q: want a list of {"role":…, "content":…} objects, got a string`, key)
		}
		var err error
		if row.Messages, err = decodeMessages(v.raw, key); err != nil {
			return row, err
		}
		return row, checkMessages(row.Messages)
	}
	if obj.has("instruction") {
		row.Kind = KindInstruction
		if err := str(obj, "instruction", &row.Instruction, true); err != nil {
			return row, err
		}
		if err := str(obj, "input", &row.Input, false); err != nil {
			return row, err
		}
		return row, str(obj, "output", &row.Output, true)
	}
	if key := name(fields.Prompt, "prompt"); obj.has(key) {
		row.Kind = KindCompletion
		if err := str(obj, key, &row.Prompt, true); err != nil {
			return row, err
		}
		return row, str(obj, name(fields.Completion, "completion"), &row.Completion, true)
	}
	for _, key := range []string{fields.Text, "code", "text"} {
		if obj.has(key) {
			row.Kind = KindText
			return row, str(obj, key, &row.Text, true)
		}
	}
	if v, ok := obj.get("input_ids"); ok {
		row.Kind = KindTokens
		ids, err := intsValue(v, "input_ids")
		if err != nil {
			return row, err
		}
		row.InputIDs = ids
		if len(row.InputIDs) == 0 {
			return row, errors.New(`"input_ids" is empty`)
		}
		for i, id := range row.InputIDs {
			if id < 0 {
				return row, fmt.Errorf(`"input_ids"[%d] = %d: ids must be ≥ 0`, i, id)
			}
		}
		if v, ok := obj.get("labels"); ok && !v.isNull() {
			if row.Labels, err = intsValue(v, "labels"); err != nil {
				return row, err
			}
			if len(row.Labels) != len(row.InputIDs) {
				return row, fmt.Errorf(`"labels" has %d entries, "input_ids" has %d: they must be aligned`, len(row.Labels), len(row.InputIDs))
			}
			for i, l := range row.Labels {
				if l < 0 && l != IgnoreIndex {
					return row, fmt.Errorf(`"labels"[%d] = %d: want a token id or -100`, i, l)
				}
			}
		}
		return row, nil
	}
	keys := make([]string, 0, len(obj))
	for _, m := range obj {
		keys = append(keys, fmt.Sprintf("%q", m.key))
	}
	have := "none"
	if len(keys) > 0 {
		have = strings.Join(keys, ", ")
	}
	return row, fmt.Errorf("no known keys (have %s); want messages, instruction/output, prompt/completion, text, code or input_ids", have)
}

func intsValue(v value, key string) ([]int, error) {
	if v.isText {
		return nil, fmt.Errorf("%q: want a list of integers, got a string", key)
	}
	return decodeInts(v.raw, key)
}

func str(obj members, key string, dst *string, required bool) error {
	v, ok := obj.get(key)
	if !ok || v.isNull() {
		if required {
			return fmt.Errorf("missing %q", key)
		}
		return nil
	}
	if v.isText {
		*dst = v.text
	} else {
		s, err := decodeString(v.raw)
		if err != nil {
			return fmt.Errorf("%q: want a string, got %s", key, describe(v.raw))
		}
		*dst = s
	}
	if required && strings.TrimSpace(*dst) == "" {
		return fmt.Errorf("%q is empty", key)
	}
	return nil
}

func checkMessages(msgs []Message) error {
	if len(msgs) == 0 {
		return errors.New(`"messages" is empty`)
	}
	assistant := false
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "tool":
		case "assistant":
			assistant = true
		default:
			return fmt.Errorf(`"messages"[%d].role = %q: want system, user, assistant or tool`, i, m.Role)
		}
	}
	if !assistant {
		return errors.New(`"messages" has no assistant turn to train on`)
	}
	return nil
}

func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		n := 37
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		return string(raw[:n]) + "..."
	}
	return string(raw)
}
