package tokenizer_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/tokenizer"
)

// chatTokenizer is a tiny byte-level BPE tokenizer.json with the two special tokens
// of a ChatML model (Qwen style).
const chatTokenizer = `{
  "added_tokens": [
    {"id": 8, "content": "<|endoftext|>", "special": true},
    {"id": 9, "content": "<|im_end|>", "special": true}
  ],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE",
    "vocab": {"h": 0, "i": 1, "Ġ": 2, "y": 3, "o": 4, "hi": 5, "yo": 6, "Ġyo": 7},
    "merges": ["h i", "y o", "Ġ yo"]}
}`

// Load a tokenizer from a model directory, encode and decode text, and resolve the
// special tokens that end a training response and stop generation.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "tokenizer-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(chatTokenizer), 0o644); err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("hi yo<|im_end|>")
	fmt.Println(ids, tok.VocabSize())
	fmt.Printf("%q %q\n", tok.Decode(ids, false), tok.Decode(ids, true))

	// tokenizer_config.json says eos_token is <|endoftext|>; <|im_end|> is a known
	// end-of-turn marker, so generation stops at either.
	sp, err := tok.ResolveSpecial(tokenizer.SpecialConfig{EOSToken: "<|endoftext|>"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bos", sp.BOS, "eos", sp.EOS, "end of turn", sp.EndOfTurn)
	// Output:
	// [5 7 9] 10
	// "hi yo<|im_end|>" "hi yo"
	// bos [] eos 8 end of turn [8 9]
}
