package dataset

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// byteTok is a test tokenizer: specials are whole tokens (ids 1000+), every other byte
// is its own id.
type byteTok struct{ specials []string }

func (t byteTok) Encode(text string) []int {
	var ids []int
outer:
	for len(text) > 0 {
		for i, s := range t.specials {
			if strings.HasPrefix(text, s) {
				ids = append(ids, 1000+i)
				text = text[len(s):]
				continue outer
			}
		}
		ids = append(ids, int(text[0]))
		text = text[1:]
	}
	return ids
}

func (t byteTok) decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id >= 1000 {
			b.WriteString(t.specials[id-1000])
		} else if id >= 0 {
			b.WriteByte(byte(id))
		}
	}
	return b.String()
}

// chatML renders like Qwen's template.
type chatML struct{}

func (chatML) Render(msgs []Message, gen bool) (string, error) {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

var tok = byteTok{specials: []string{"<|im_start|>", "<|im_end|>", "</s>"}}

const (
	imEnd = 1001
	eos   = 1002
)

// trained returns the text of the tokens that carry loss.
func trained(ex Example) string {
	var ids []int32
	for _, l := range ex.Labels {
		if l != IgnoreIndex {
			ids = append(ids, l)
		}
	}
	return tok.decode(ids)
}

func TestParseRowKinds(t *testing.T) {
	for _, tc := range []struct {
		json string
		kind Kind
		err  string
	}{
		{`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}`, KindChat, ""},
		{`{"instruction":"a","input":"","output":"b"}`, KindInstruction, ""},
		{`{"prompt":"a","completion":"b"}`, KindCompletion, ""},
		{`{"code":"fn main() {}"}`, KindText, ""},
		{`{"text":"x"}`, KindText, ""},
		{`{"input_ids":[1,2,3],"labels":[-100,2,3]}`, KindTokens, ""},
		{`{"input_ids":[1,2,3]}`, KindTokens, ""},
		// the first matching key set wins
		{`{"text":"x","input_ids":[1]}`, KindText, ""},
		{`not json`, 0, "invalid JSON"},
		{`{"foo":1}`, 0, "no known keys"},
		{`{"text":5}`, 0, `"text": want a string`},
		{`{"text":"   "}`, 0, `"text" is empty`},
		{`{"prompt":"a"}`, 0, `missing "completion"`},
		{`{"messages":[{"role":"user","content":"hi"}]}`, 0, "no assistant turn"},
		{`{"messages":[{"role":"bot","content":"hi"}]}`, 0, `role = "bot"`},
		{`{"messages":"hi"}`, 0, "want a list"},
		{`{"input_ids":[1,2],"labels":[1]}`, 0, "aligned"},
		{`{"input_ids":[1,-2]}`, 0, "must be ≥ 0"},
		{`{"input_ids":[1,2],"labels":[1,-5]}`, 0, "want a token id or -100"},
		{`{"input_ids":[]}`, 0, "empty"},
	} {
		row, err := ParseRow([]byte(tc.json), Fields{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.json, err, tc.err)
			}
			continue
		}
		if err != nil || row.Kind != tc.kind {
			t.Errorf("%s: kind %v err %v, want %v", tc.json, row.Kind, err, tc.kind)
		}
	}
}

func TestReadReportsBadRowsWithLines(t *testing.T) {
	in := "{\"text\":\"a\"}\n\n{bad\n{\"text\":\"b\"}\n{\"nope\":1}\n"
	rows, bad, err := Read(strings.NewReader(in), "d.jsonl", ReadOptions{})
	if err != nil || len(rows) != 2 || len(bad) != 2 {
		t.Fatalf("rows %d bad %v err %v", len(rows), bad, err)
	}
	if bad[0].Source != "d.jsonl:3" || bad[1].Source != "d.jsonl:5" || rows[1].Source != "d.jsonl:4" {
		t.Fatalf("sources: %v %v", bad, rows[1].Source)
	}
	_, _, err = Read(strings.NewReader(in), "d.jsonl", ReadOptions{Strict: true})
	var b BadRow
	if !errors.As(err, &b) || b.Source != "d.jsonl:3" || !strings.Contains(err.Error(), "d.jsonl:3: invalid JSON") {
		t.Fatalf("strict err = %v", err)
	}
	rows, _, _ = Read(strings.NewReader(in), "d.jsonl", ReadOptions{MaxRows: 1})
	if len(rows) != 1 {
		t.Fatalf("MaxRows: %d rows", len(rows))
	}
}

func encode(t *testing.T, opts EncodeOptions, js string) Example {
	t.Helper()
	enc, err := NewEncoder(tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	row, err := ParseRow([]byte(js), Fields{})
	if err != nil {
		t.Fatal(err)
	}
	ex, _, err := enc.Encode(row)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.InputIDs) != len(ex.Labels) {
		t.Fatalf("ids %d labels %d", len(ex.InputIDs), len(ex.Labels))
	}
	return ex
}

func TestTemplatesAndMasks(t *testing.T) {
	base := EncodeOptions{EOS: eos, BOS: []int{7}, EndOfTurn: []int{imEnd}}
	alpaca, plain, chat := base, base, base
	alpaca.Template, plain.Template = TemplateAlpaca, TemplatePlain
	chat.Template, chat.Chat = TemplateChat, chatML{}
	for _, tc := range []struct {
		name      string
		opts      EncodeOptions
		row       string
		text      string // full decoded text (BOS 7 is "\a")
		trainText string
	}{
		{"alpaca", alpaca, `{"instruction":"Add","input":"1 2","output":"3"}`,
			"\a### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response:\n3</s>", "3</s>"},
		{"alpaca no input", alpaca, `{"instruction":"Add","output":"3"}`,
			"\a### Instruction:\nAdd\n\n### Response:\n3</s>", "3</s>"},
		{"plain", plain, `{"prompt":"cube(1);","completion":"sphere(2);"}`,
			"\acube(1);\n\nsphere(2);</s>", "sphere(2);</s>"},
		{"text", plain, `{"code":"fn f() {}"}`, "\afn f() {}</s>", "fn f() {}</s>"},
		{"chat", chat, `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U1"},{"role":"assistant","content":"A1"},{"role":"user","content":"U2"},{"role":"assistant","content":"A2"}]}`,
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n",
			"A1<|im_end|>\nA2<|im_end|>\n"},
		{"completion as chat", chat, `{"prompt":"P","completion":"C"}`,
			"<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\nC<|im_end|>\n", "C<|im_end|>\n"},
		{"chat without template", alpaca, `{"messages":[{"role":"user","content":"U"},{"role":"assistant","content":"A"}]}`,
			"\a### Instruction:\nU\n\n### Response:\nA</s>", "A</s>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := encode(t, tc.opts, tc.row)
			if got := tok.decode(ex.InputIDs); got != tc.text {
				t.Errorf("text\n got %q\nwant %q", got, tc.text)
			}
			if got := trained(ex); got != tc.trainText {
				t.Errorf("trained\n got %q\nwant %q", got, tc.trainText)
			}
			tc.opts.TrainOnPrompt = true
			ex = encode(t, tc.opts, tc.row)
			if got := trained(ex); got != tc.text {
				t.Errorf("train-on-prompt trains %q, want everything %q", got, tc.text)
			}
		})
	}
}

func TestAutoTemplate(t *testing.T) {
	e, _ := NewEncoder(tok, EncodeOptions{Template: TemplateAuto, Chat: chatML{}})
	if e.Template() != TemplateChat {
		t.Fatal(e.Template())
	}
	e, _ = NewEncoder(tok, EncodeOptions{Template: TemplateAuto})
	if e.Template() != TemplateAlpaca {
		t.Fatal(e.Template())
	}
	if _, err := NewEncoder(tok, EncodeOptions{Template: TemplateChat}); err == nil || !strings.Contains(err.Error(), "no chat_template") {
		t.Fatal(err)
	}
	var te *TemplateError // the field is named; the command line names its flag
	if _, err := NewEncoder(tok, EncodeOptions{Template: "jinja"}); !errors.As(err, &te) || te.Template != "jinja" {
		t.Fatal(err)
	}
}

func TestTruncationAndTokens(t *testing.T) {
	opts := EncodeOptions{Template: TemplatePlain, EOS: eos, MaxSeqLen: 4}
	enc, _ := NewEncoder(tok, opts)
	row, _ := ParseRow([]byte(`{"text":"abcdefgh"}`), Fields{})
	ex, trunc, err := enc.Encode(row)
	if err != nil || !trunc || len(ex.InputIDs) != 4 {
		t.Fatalf("trunc %v len %d err %v", trunc, len(ex.InputIDs), err)
	}
	// The prompt alone fills the budget: nothing left to train on.
	row, _ = ParseRow([]byte(`{"prompt":"abcdefgh","completion":"x"}`), Fields{})
	if _, _, err = enc.Encode(row); err == nil || !strings.Contains(err.Error(), "no trainable tokens left after truncation") {
		t.Fatalf("err = %v", err)
	}
	row, _ = ParseRow([]byte(`{"input_ids":[5,6,7],"labels":[-100,-100,7]}`), Fields{})
	ex, _, err = enc.Encode(row)
	if err != nil || !slices.Equal(ex.Labels, []int32{-100, -100, 7}) || ex.Trainable() != 1 {
		t.Fatalf("%v %v", ex, err)
	}
	row, _ = ParseRow([]byte(`{"input_ids":[5,6]}`), Fields{})
	ex, _, _ = enc.Encode(row)
	if !slices.Equal(ex.Labels, []int32{5, 6}) {
		t.Fatalf("labels default to input_ids: %v", ex.Labels)
	}
}

func TestSplit(t *testing.T) {
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	tr, va := Split(items, 0.1, 42)
	if len(tr) != 90 || len(va) != 10 {
		t.Fatalf("%d/%d", len(tr), len(va))
	}
	tr2, va2 := Split(items, 0.1, 42)
	if !slices.Equal(va, va2) || !slices.Equal(tr, tr2) {
		t.Fatal("split not deterministic")
	}
	_, va3 := Split(items, 0.1, 43)
	if slices.Equal(va, va3) {
		t.Fatal("seed ignored")
	}
	if tr, va := Split(items[:3], 0.01, 1); len(tr) != 2 || len(va) != 1 {
		t.Fatalf("tiny split %d/%d", len(tr), len(va))
	}
	if tr, va := Split(items, 0, 1); len(tr) != 100 || va != nil {
		t.Fatal("frac 0 must keep everything")
	}
}

func TestEpochBatches(t *testing.T) {
	var exs []Example
	for i := 1; i <= 37; i++ {
		ids := make([]int32, i%9+1)
		for j := range ids {
			ids[j] = int32(i)
		}
		exs = append(exs, Example{InputIDs: ids, Labels: slices.Clone(ids)})
	}
	opts := BatchOptions{BatchSize: 4, Seed: 1, GroupByLength: true}
	b0 := EpochBatches(exs, 0, opts)
	seen := map[int32]int{}
	for _, b := range b0 {
		for r := range b.B {
			ids, _, _ := b.Row(r)
			seen[ids[0]]++
		}
	}
	if len(b0) != 10 || len(seen) != 37 {
		t.Fatalf("%d batches, %d distinct examples", len(b0), len(seen))
	}
	if fmt.Sprint(EpochBatches(exs, 0, opts)) != fmt.Sprint(b0) {
		t.Fatal("not deterministic")
	}
	if fmt.Sprint(EpochBatches(exs, 1, opts)) == fmt.Sprint(b0) {
		t.Fatal("epochs must reshuffle")
	}
	// Length grouping cuts padding compared with random batches.
	pad := func(bs []Batch) (p int) {
		for _, b := range bs {
			p += b.B*b.T - b.Tokens()
		}
		return p
	}
	if g, r := pad(b0), pad(EpochBatches(exs, 0, BatchOptions{BatchSize: 4, Seed: 1})); g >= r {
		t.Fatalf("grouped padding %d ≥ random %d", g, r)
	}
}

func TestPacking(t *testing.T) {
	exs := []Example{
		{InputIDs: []int32{1, 2, 3}, Labels: []int32{1, 2, 3}},
		{InputIDs: []int32{4, 5}, Labels: []int32{4, 5}},
		{InputIDs: []int32{6, 7, 8, 9}, Labels: []int32{6, 7, 8, 9}},
	}
	bs := EpochBatches(exs, 0, BatchOptions{BatchSize: 8, Seed: 3, Pack: true, MaxSeqLen: 6})
	total := 0
	for _, b := range bs {
		pos := make([]int32, b.B*b.T)
		b.Positions(pos)
		for r := range b.B {
			ids, labels, segs := b.Row(r)
			if len(ids) > 6 {
				t.Fatalf("packed seq longer than max: %v", ids)
			}
			for i := range ids {
				total++
				if pos[r*b.T+i] == 0 && i > 0 {
					if segs[i] == segs[i-1] || labels[i] != IgnoreIndex {
						t.Fatalf("segment start %d not separated/masked: %v %v %v", i, ids, labels, segs)
					}
				}
			}
		}
	}
	if total != 9 {
		t.Fatalf("packed %d tokens, want 9", total)
	}
}

// thinkML renders like Qwen3: only the final assistant turn carries an empty think block,
// so earlier turns are not prefixes of later renderings.
type thinkML struct{}

func (thinkML) Render(msgs []Message, gen bool) (string, error) {
	var b strings.Builder
	for i, m := range msgs {
		c := m.Content
		if m.Role == "assistant" && i == len(msgs)-1 {
			c = "<think></think>" + c
		}
		fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, c)
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

func TestChatSearchFallback(t *testing.T) {
	opts := EncodeOptions{Template: TemplateChat, Chat: thinkML{}, EOS: eos, EndOfTurn: []int{imEnd}}
	ex := encode(t, opts, `{"messages":[{"role":"user","content":"U1"},{"role":"assistant","content":"A1"},{"role":"user","content":"U2"},{"role":"assistant","content":"A2"}]}`)
	want := "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n<think></think>A2<|im_end|>\n"
	if got := tok.decode(ex.InputIDs); got != want {
		t.Fatalf("text %q", got)
	}
	if got := trained(ex); got != "A1<|im_end|>\nA2<|im_end|>\n" {
		t.Fatalf("trained %q", got)
	}
}
