package tokenizer

import (
	"encoding/json"
	"github.com/bidora/bidora/internal/testutil"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bidora/bidora/internal/tinymodel"
)

// metaspaceJSON is a small byte-fallback BPE tokenizer in the Llama-2 style,
// exercising the normalizer, decoder and post-processor sequences.
const metaspaceJSON = `{
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true},
    {"id": 30, "content": "[x]", "lstrip": true, "rstrip": true, "normalized": true, "single_word": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, {"type": "NFKC"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0xE2>": 4, "▁": 5, "a": 6, "b": 7, "▁a": 8, "ab": 9, "▁ab": 10},
    "merges": [["▁", "a"], "a b", ["▁a", "b"]]}
}`

// FuzzParse feeds arbitrary tokenizer.json content to Parse and, when it is
// accepted, encodes arbitrary text with it. Parsing must not allocate far
// more than the file holds; every id Encode and EncodeWithSpecial give must
// be known to IDToToken and below VocabSize; encoding is deterministic; and
// Decode never panics.
func FuzzParse(f *testing.F) {
	builtin, _ := tinymodel.BuiltinTokenizer()
	for _, s := range []string{tinyJSON, metaspaceJSON, string(builtin)} {
		f.Add([]byte(s), "Hello <eos>[x] world\n\tab\xff 日本")
	}
	for _, s := range []string{
		`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}]}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}, "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Lowercase"}, "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": null, "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}`,
		`{"model": {"type": "WordPiece", "vocab": {}}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}}`,
		`{"added_tokens": [{"id": 5, "content": ""}], "model": {"type": "BPE", "vocab": {}, "merges": []}}`,
		`{}`,
	} {
		f.Add([]byte(s), "aAb 12 ab")
	}
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		var tok *Tokenizer
		var err error
		if n := testutil.AllocBytes(func() { tok, err = Parse(data) }); n > 64*uint64(len(data))+4<<20 {
			t.Fatalf("Parse of %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if tok != nil {
				t.Fatal("Parse returned a tokenizer and an error")
			}
			return
		}
		vs := tok.VocabSize()
		check := func(what string, ids []int) {
			for _, id := range ids {
				if _, ok := tok.IDToToken(id); !ok || id < 0 || id >= vs {
					t.Fatalf("%s(%q) gave id %d (vocab size %d, known %v)", what, text, id, vs, ok)
				}
			}
		}
		ids := tok.Encode(text)
		check("Encode", ids)
		if again := tok.Encode(text); !slices.Equal(again, ids) {
			t.Fatalf("Encode(%q) gave %v, then %v", text, ids, again)
		}
		check("EncodeWithSpecial", tok.EncodeWithSpecial(text))
		_ = tok.Decode(ids, false)
		_ = tok.Decode(append(ids, -1, vs, 1<<40), true)
		for _, at := range tok.AddedTokens() {
			if got, ok := tok.IDToToken(at.ID); !ok || (got != at.Content && tok.addedByID[at.ID] == at) {
				t.Fatalf("added token %q (id %d): IDToToken gives %q, %v", at.Content, at.ID, got, ok)
			}
		}
	})
}

// FuzzVocabJSON compares the hand-written vocab reader with encoding/json on
// valid JSON (the only input it is given): both accept or both refuse an
// object of integer ids, and agree on its contents.
func FuzzVocabJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 0, "b": 1}`, ` { "\u0120x" : 7 , "a\"b": 2147483647 } `, `{"a": -3, "a": 4}`,
		`{"a": 1.5}`, `{"a": 2147483648}`, `{"a": "1"}`, `{"\ud800": 1}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return // Parse hands the reader a json.RawMessage of a decoded file
		}
		var want map[string]int32
		jerr := json.Unmarshal(raw, &want)
		if jerr == nil && want == nil {
			return // null: encoding/json accepts it, the reader wants an object
		}
		got, err := parseVocabJSON(raw)
		if (err == nil) != (jerr == nil) {
			t.Fatalf("parseVocabJSON(%s) error %v, encoding/json error %v", raw, err, jerr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("parseVocabJSON(%s) = %v, encoding/json gives %v", raw, got, want)
		}
	})
}

// FuzzMergesJSON compares the hand-written merges reader with encoding/json
// on valid JSON: a list of "a b" strings (split at the first space) or of
// two-string lists, or null.
func FuzzMergesJSON(f *testing.F) {
	for _, s := range []string{`null`, `[]`, `["a b", "ab c"]`, `[["a", "b"], ["a b", " "]]`, `["a  b"]`, `["ab"]`,
		`[["a"]]`, `[["a", "b", "c"]]`, `[1]`, `["\u0020x y"]`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return
		}
		want, wantOK := referenceMerges(raw)
		got, err := parseMergesJSON(raw)
		if (err == nil) != wantOK {
			t.Fatalf("parseMergesJSON(%s) error %v, reference ok %v", raw, err, wantOK)
		}
		if err == nil && !slices.Equal(got, want) {
			t.Fatalf("parseMergesJSON(%s) = %q, reference %q", raw, got, want)
		}
	})
}

// referenceMerges reads merges with encoding/json.
func referenceMerges(raw []byte) ([][2]string, bool) {
	str := func(raw json.RawMessage) (string, bool) {
		var s string
		if !strings.HasPrefix(strings.TrimLeft(string(raw), " \t\r\n"), `"`) || json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, false
	}
	var out [][2]string
	for _, it := range items {
		if s, ok := str(it); ok {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, false
			}
			out = append(out, [2]string{a, b})
			continue
		}
		var pair []json.RawMessage
		if json.Unmarshal(it, &pair) != nil || len(pair) != 2 {
			return nil, false
		}
		a, ok1 := str(pair[0])
		b, ok2 := str(pair[1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, [2]string{a, b})
	}
	return out, true
}

// TestParseFuzzFindings holds the inputs the fuzz targets found: each was
// accepted before and is refused now, cheaply.
func TestParseFuzzFindings(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		// A lone huge vocab id made Parse allocate a slice of that many
		// strings: 3.2 GB for this 60-byte file.
		{"huge vocab id", `{"model":{"type":"BPE","vocab":{"a":200000000},"merges":[]}}`, "nearly contiguous"},
		// An added token id beyond int32 overflowed VocabSize and was handed
		// out by Encode.
		{"huge added id", `{"added_tokens":[{"id":9223372036854775807,"content":"x"}],"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "too large"},
		// Post-processor ids are emitted by EncodeWithSpecial; one naming no
		// token (here negative) reached callers unchecked.
		{"unknown post-processor id", `{"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}],"special_tokens":{"<s>":{"ids":[-5]}}},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "post_processor"},
		{"roberta id outside the vocab", `{"post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "id 2"},
	} {
		var err error
		if n := testutil.AllocBytes(func() { _, err = Parse([]byte(tc.json)) }); n > 1<<20 {
			t.Errorf("%s: Parse allocated %d bytes", tc.name, n)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
