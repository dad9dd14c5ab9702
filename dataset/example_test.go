package dataset_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/bidora/bidora/dataset"
)

// letters is a toy tokenizer: a→1, b→2, …, z→26; anything else is dropped.
type letters struct{}

func (letters) Encode(text string) []int {
	var ids []int
	for _, c := range text {
		if c >= 'a' && c <= 'z' {
			ids = append(ids, int(c-'a')+1)
		}
	}
	return ids
}

// Read JSONL rows, encode them (the loss covers the completion and the EOS only),
// and cut an epoch into padded batches.
func Example() {
	jsonl := `{"prompt": "ab", "completion": "cd"}
{"prompt": "xyz", "completion": "w"}
{"text": "hello"}
{"prompt": 42}
`
	rows, bad, err := dataset.Read(strings.NewReader(jsonl), "toy.jsonl", dataset.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d rows, %d bad: %s\n", len(rows), len(bad), bad[0].Source)

	enc, err := dataset.NewEncoder(letters{}, dataset.EncodeOptions{Template: dataset.TemplatePlain, EOS: 27})
	if err != nil {
		log.Fatal(err)
	}
	var examples []dataset.Example
	for _, r := range rows {
		ex, _, err := enc.Encode(r)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Source, ex.InputIDs, ex.Labels)
		examples = append(examples, ex)
	}

	for _, b := range dataset.EpochBatches(examples, 0, dataset.BatchOptions{BatchSize: 2, Seed: 1}) {
		fmt.Printf("batch %d×%d, %d trainable labels\n", b.B, b.T, b.Trainable())
	}
	// Output:
	// 3 rows, 1 bad: toy.jsonl:4
	// toy.jsonl:1 [1 2 3 4 27] [-100 -100 3 4 27]
	// toy.jsonl:2 [24 25 26 23 27] [-100 -100 -100 23 27]
	// toy.jsonl:3 [8 5 12 12 15 27] [8 5 12 12 15 27]
	// batch 2×5, 5 trainable labels
	// batch 1×6, 5 trainable labels
}
