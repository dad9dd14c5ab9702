package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/peft"
)

// logits runs the model in dir (plus the adapter in adapter, if set) in f32.
func logits(t *testing.T, dir, adapter string, ids []int32) []float32 {
	t.Helper()
	m, err := model.Load(dir, model.Options{F32Weights: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if adapter != "" {
		if err := m.LoadAdapter(adapter); err != nil {
			t.Fatal(err)
		}
	}
	out, err := m.Logits(context.Background(), &dataset.Batch{B: 1, T: len(ids), InputIDs: ids, Labels: ids})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// maxDiff returns ‖a−b‖∞ / ‖b‖∞.
func maxDiff(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		n = max(n, math.Abs(float64(b[i])))
	}
	return d / n
}

// TestMergedLogits checks the contract of issue 8: the merged model's logits
// equal base+adapter logits (f32, within 1e-5 relative).
func TestMergedLogits(t *testing.T) {
	ids := []int32{3, 17, 99, 250, 4, 61, 120, 7, 200, 33, 150, 12}
	for _, tc := range []struct {
		name string
		base tinymodel.Options
		cfg  func(*peft.Config)
	}{
		{"lora llama", tinymodel.Options{}, func(c *peft.Config) {}},
		{"rslora patterns qwen2", tinymodel.Options{Arch: "qwen2"}, func(c *peft.Config) {
			c.UseRslora = true
			c.TargetModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
			c.RankPattern = peft.Patterns{{Key: `layers\.1\.mlp\.down_proj`, Value: 2}}
			c.AlphaPattern = peft.Patterns{{Key: "o_proj", Value: 3}}
		}},
		{"dora llama", tinymodel.Options{NumKVHeads: 4}, func(c *peft.Config) {
			c.UseDora = true
			c.TargetModules = []string{"q_proj", "v_proj", "up_proj", "down_proj"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseDir, mcfg := writeBase(t, tc.base)
			cfg := peft.NewConfig("b", 4, 8, 0, []string{"q_proj", "v_proj"})
			tc.cfg(cfg)
			adDir, _ := writeAdapter(t, mcfg, cfg, 9)
			out := filepath.Join(t.TempDir(), "merged")
			if _, err := Merge(context.Background(), baseDir, adDir, out, Options{}); err != nil {
				t.Fatal(err)
			}
			plain := logits(t, baseDir, "", ids)
			adapted := logits(t, baseDir, adDir, ids)
			merged := logits(t, out, "", ids)
			if d := maxDiff(plain, adapted); d < 1e-3 {
				t.Fatalf("the adapter barely changes the logits (%g); the test would prove nothing", d)
			}
			t.Logf("adapter effect %.3g, merged vs base+adapter %.3g", maxDiff(plain, adapted), maxDiff(merged, adapted))
			if d := maxDiff(merged, adapted); d > 1e-5 {
				t.Errorf("merged logits differ from base+adapter by %g relative, want ≤ 1e-5", d)
			}
		})
	}
}
