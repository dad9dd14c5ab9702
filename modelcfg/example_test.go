package modelcfg_test

import (
	"fmt"
	"log"

	"github.com/bidora/bidora/modelcfg"
)

// Parse a config.json: HF's defaults fill what the file leaves out, and the shapes
// of a decoder block's projections follow from it.
func ExampleParse() {
	cfg, err := modelcfg.Parse([]byte(`{
		"model_type": "qwen2",
		"hidden_size": 896, "intermediate_size": 4864,
		"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
		"vocab_size": 151936, "tie_word_embeddings": true,
		"eos_token_id": 151643
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("head_dim", cfg.HeadDim, "rope_theta", cfg.RopeTheta, "qkv bias", cfg.QKVBias(), "eos", cfg.EOSTokenIDs)
	for _, p := range modelcfg.Projections {
		out, in, _ := cfg.ProjShape(p)
		fmt.Printf("%s [%d, %d]\n", p, out, in)
	}
	fmt.Printf("%.1fM parameters\n", float64(cfg.NumParams())/1e6)

	// A shape the engine cannot run is refused with the field named (a *FieldError).
	_, err = modelcfg.Parse([]byte(`{"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
		"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 3, "vocab_size": 151936}`))
	fmt.Println(err)
	// Output:
	// head_dim 64 rope_theta 10000 qkv bias true eos [151643]
	// q_proj [896, 896]
	// k_proj [128, 896]
	// v_proj [128, 896]
	// o_proj [896, 896]
	// gate_proj [4864, 896]
	// up_proj [4864, 896]
	// down_proj [896, 4864]
	// 494.0M parameters
	// num_key_value_heads (3) must divide num_attention_heads (14)
}
