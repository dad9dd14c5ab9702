package fim_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/bidora/bidora/fim"
	"github.com/bidora/bidora/tokenizer"
)

// Build a FIM training example and an infilling prompt with a StarCoder-style
// vocabulary.
func Example() {
	tok, err := tokenizer.Load("testdata/starcoder.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := fim.Detect(tok)
	if err != nil {
		fmt.Println(err) // a *fim.NoTokensError: this tokenizer cannot do FIM
		return
	}
	b := fim.NewBuilder(tok, v, nil)
	prefix, middle, suffix := fim.Split("def add(a, b):\n    return a + b\n", rand.New(rand.NewPCG(1, 2)))
	ex, err := b.Example(fim.Parts{Prefix: prefix, Middle: middle, Suffix: suffix}, fim.PSM, fim.LossMiddle)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Family, ex.InputIDs[0] == int32(v.Prefix), ex.InputIDs[len(ex.InputIDs)-1] == int32(v.End))
	fmt.Println(tok.Decode(toInts(ex.InputIDs), false))
	prompt, _ := b.Prompt("", "def add(a, b):\n    return ", "\n", fim.PSM)
	fmt.Println(tok.Decode(prompt, false))
	fmt.Printf("%.2f\n", fim.EditSimilarity("a + b", "a+b"))
	// Output:
	// starcoder true true
	// <fim_prefix>def add(a, b):
	//     r<fim_suffix> a + b
	// <fim_middle>eturn<|endoftext|>
	// <fim_prefix>def add(a, b):
	//     return <fim_suffix>
	// <fim_middle>
	// 0.60
}

func toInts(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
