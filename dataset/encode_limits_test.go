package dataset

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/tokenizer"
)

// Ids the model cannot embed are refused when a row is encoded, naming the id, not
// found by the training step that crashes on them.
func TestEncodeChecksVocabSize(t *testing.T) {
	opts := EncodeOptions{Template: TemplatePlain, EOS: eos, VocabSize: 1003}
	for _, tc := range []struct {
		row  string
		opts EncodeOptions
		err  string
	}{
		{`{"input_ids":[1,2,1003]}`, opts, `"input_ids"[2] = 1003 is outside the vocabulary [0, 1003) of the model`},
		{`{"input_ids":[1,2,3],"labels":[-100,5000,3]}`, opts, `"labels"[1] = 5000 is outside the vocabulary [0, 1003) of the model`},
		{`{"input_ids":[1,2,1002]}`, opts, ""},
		{`{"input_ids":[1,2,99999]}`, EncodeOptions{Template: TemplatePlain, EOS: eos}, ""}, // unchecked without VocabSize
		// byteTok gives the byte's value: 'z' = 122 is beyond a 100-id model.
		{`{"text":"z"}`, EncodeOptions{Template: TemplatePlain, EOS: 50, VocabSize: 100}, "token id 122 is outside the vocabulary [0, 100) of the model"},
		{`{"text":"a"}`, EncodeOptions{Template: TemplatePlain, EOS: eos, VocabSize: 100}, "token id 1002 is outside the vocabulary [0, 100)"}, // the EOS
		{`{"text":"a"}`, EncodeOptions{Template: TemplatePlain, EOS: 50, VocabSize: 100}, ""},
	} {
		enc, err := NewEncoder(tok, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		row, err := ParseRow([]byte(tc.row), Fields{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = enc.Encode(row)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.row, err, tc.err)
		}
	}
}

// A row of megabytes with --max-seq-len costs what the kept tokens need: only a
// prefix of its text is tokenised.
func TestEncodeLongRowIsBounded(t *testing.T) {
	long := strings.Repeat("fn main() {}\n", 2<<20) // 26 MB
	for _, tc := range []struct {
		name string
		opts EncodeOptions
		row  Row
	}{
		{"text", EncodeOptions{Template: TemplatePlain, EOS: eos, MaxSeqLen: 64}, Row{Kind: KindText, Text: long}},
		{"completion", EncodeOptions{Template: TemplateAlpaca, EOS: eos, MaxSeqLen: 64}, Row{Kind: KindCompletion, Prompt: "p", Completion: long}},
		{"chat", EncodeOptions{Template: TemplateChat, Chat: chatML{}, EOS: eos, EndOfTurn: []int{imEnd}, MaxSeqLen: 64},
			Row{Kind: KindChat, Messages: []Message{{"user", "q"}, {"assistant", long}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := NewEncoder(tok, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ex, truncated, err := enc.Encode(tc.row)
			runtime.ReadMemStats(&after)
			if err != nil || !truncated || len(ex.InputIDs) != 64 {
				t.Fatalf("%d ids, truncated %v, err %v", len(ex.InputIDs), truncated, err)
			}
			// The chat template renders the 26 MB conversation a few times; tokenising
			// it all would cost 8 bytes an id more.
			limit := uint64(1 << 20)
			if tc.name == "chat" {
				limit = 6 * uint64(len(long))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
				t.Errorf("encoding allocated %d MB", alloc>>20)
			}
			// The kept ids are those of the whole text, cut.
			full := tc.opts
			full.MaxSeqLen = 0
			short := tc.row
			short.Text, short.Completion = strings.Repeat("fn main() {}\n", 100), strings.Repeat("fn main() {}\n", 100)
			if tc.name == "chat" {
				short.Messages = []Message{{"user", "q"}, {"assistant", strings.Repeat("fn main() {}\n", 100)}}
			}
			fenc, _ := NewEncoder(tok, full)
			want, _, err := fenc.Encode(short)
			if err != nil || !slices.Equal(ex.InputIDs, want.InputIDs[:64]) || !slices.Equal(ex.Labels, want.Labels[:64]) {
				t.Errorf("ids %v\nwant %v", ex.InputIDs, want.InputIDs[:min(64, len(want.InputIDs))])
			}
		})
	}
}

// With real tokenizers, encoding a prefix of a long text keeps exactly the ids that
// encoding all of it and truncating gives.
func TestEncodePrefixMatchesFullEncoding(t *testing.T) {
	corpus, err := filepath.Glob(filepath.Join("..", "tokenizer", "testdata", "corpus", "*"))
	if err != nil || len(corpus) == 0 {
		t.Skip("no tokenizer corpus")
	}
	var text strings.Builder
	for range 8 {
		for _, p := range corpus {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text.Write(b)
		}
	}
	for _, name := range []string{"qwen3", "llama2"} {
		dir := filepath.Join("..", "..", "shared", "tokenizers", name)
		if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
			t.Skipf("shared tokenizer %s absent", name)
		}
		tk, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		all := tk.Encode(text.String())
		for _, m := range []int{10, 300, 2048} {
			enc, err := NewEncoder(tk, EncodeOptions{Template: TemplatePlain, EOS: 2, MaxSeqLen: m})
			if err != nil {
				t.Fatal(err)
			}
			ex, truncated, err := enc.Encode(Row{Kind: KindText, Text: text.String()})
			if err != nil || !truncated {
				t.Fatal(err, truncated)
			}
			if !slices.Equal(toInt32(all[:m]), ex.InputIDs) {
				t.Errorf("%s, max %d: prefix encoding differs from the full encoding", name, m)
			}
		}
	}
}
