package catalog

import (
	"fmt"
	"testing"
)

func TestEntriesValid(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Entries() {
		if err := e.Config.Validate(); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
		if e.ContextLength != e.Config.MaxPositionEmbeddings {
			t.Errorf("%s: context %d != max_position_embeddings %d", e.ID, e.ContextLength, e.Config.MaxPositionEmbeddings)
		}
		if e.Source == "" || e.Family == "" {
			t.Errorf("%s: missing source or family", e.ID)
		}
		for _, k := range []string{e.ID, e.Preset} {
			if k != "" && seen[k] {
				t.Errorf("duplicate name %q", k)
			}
			seen[k] = true
		}
	}
}

// TestPublishedParamCounts checks each shape against the parameter count its model
// card (or the safetensors index total) publishes. Exact figures where the publisher
// gives one, otherwise the rounded figure of the card.
func TestPublishedParamCounts(t *testing.T) {
	exact := []struct {
		id   string
		want int64
	}{
		{"Qwen/Qwen2.5-0.5B-Instruct", 494_032_768},         // Qwen2.5-0.5B card: 0.49B; HF safetensors total
		{"meta-llama/Llama-3.2-1B-Instruct", 1_235_814_400}, // Llama 3.2 1B: 1.24B
		{"meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248}, // Llama 3.1 8B: 8.03B
		{"mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552},
	}
	for _, c := range exact {
		e, ok := Find(c.id)
		if !ok {
			t.Fatalf("%s not found", c.id)
		}
		if got := e.Params(); got != c.want {
			t.Errorf("%s: NumParams = %d, want %d", c.id, got, c.want)
		}
	}
	rounded := []struct {
		id   string
		want string // as printed on the model card
	}{
		{"Qwen/Qwen2.5-Coder-1.5B-Instruct", "1.54B"},
		{"Qwen/Qwen2.5-Coder-3B-Instruct", "3.09B"},
		{"Qwen/Qwen2.5-Coder-7B-Instruct", "7.62B"}, // card says 7.61B (7,615,616,512 truncated)
		{"Qwen/Qwen2.5-Coder-14B-Instruct", "14.77B"},
		{"Qwen/Qwen2.5-Coder-32B-Instruct", "32.76B"},
		{"meta-llama/Llama-3.2-3B-Instruct", "3.21B"},
		{"deepseek-ai/deepseek-coder-6.7b-instruct", "6.74B"},
		{"codellama/CodeLlama-7b-hf", "6.74B"},
	}
	for _, c := range rounded {
		e, _ := Find(c.id)
		if got := fmt.Sprintf("%.2fB", float64(e.Params())/1e9); got != c.want {
			t.Errorf("%s: NumParams = %d (%s), want %s", c.id, e.Params(), got, c.want)
		}
	}
}

func TestFind(t *testing.T) {
	for _, name := range []string{"qwen2.5-0.5b", "QWEN2.5-CODER-1.5B", "qwen/qwen2.5-coder-7b-instruct", "llama-3.2-1b"} {
		if _, ok := Find(name); !ok {
			t.Errorf("Find(%q) failed", name)
		}
	}
	if _, ok := Find("gpt-2"); ok {
		t.Error("Find(gpt-2) succeeded")
	}
	// Entries returns copies: changing one must not change the catalog.
	e, _ := Find("llama-3.2-1b")
	e.Config.RopeScaling.Factor = 1
	e2, _ := Find("llama-3.2-1b")
	if e2.Config.RopeScaling.Factor != 32 {
		t.Error("Find returned shared RopeScaling")
	}
}

func ExampleFind() {
	e, _ := Find("qwen2.5-coder-7b")
	fmt.Println(e.ID, e.Config.NumHiddenLayers, e.Config.HiddenSize, e.Params())
	// Output: Qwen/Qwen2.5-Coder-7B-Instruct 28 3584 7615616512
}
