package merge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// writeBase writes a random model and returns its directory and config.
func writeBase(t testing.TB, opts tinymodel.Options) (string, *modelcfg.Config) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	cfg, err := modelcfg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// writeAdapter writes a random adapter (non-zero B, so that merging changes
// the weights) for every projection cfg targets, and returns its tensors.
func writeAdapter(t testing.TB, mcfg *modelcfg.Config, cfg *peft.Config, seed uint64) (string, map[string]peft.Tensor) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	tensors := map[string]peft.Tensor{}
	randn := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	for l := 0; l < mcfg.NumHiddenLayers; l++ {
		for _, p := range modelcfg.Projections {
			module := peft.ModuleName(l, p)
			if !cfg.Targets(module) {
				continue
			}
			out, in, _ := mcfg.ProjShape(p)
			r := cfg.RankFor(module)
			tensors[peft.KeyA(l, p)] = peft.Tensor{Shape: []int{r, in}, Data: randn(r*in, 0.1)}
			tensors[peft.KeyB(l, p)] = peft.Tensor{Shape: []int{out, r}, Data: randn(out*r, 0.05)}
			if cfg.UseDora {
				m := make([]float32, out)
				for i := range m {
					m[i] = float32(0.1 + rng.Float64())
				}
				tensors[peft.KeyMagnitude(l, p)] = peft.Tensor{Shape: []int{out}, Data: m}
			}
		}
	}
	st, err := peft.ToTensors(tensors, safetensors.F32)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := peft.Save(dir, cfg, st); err != nil {
		t.Fatal(err)
	}
	return dir, tensors
}

// reference computes the merged weight in float64, independently of Apply.
func reference(w []float32, out, in int, a, b []float32, r int, s float64, mag []float32) []float64 {
	v := make([]float64, out*in)
	for o := 0; o < out; o++ {
		var ss float64
		for i := 0; i < in; i++ {
			x := float64(w[o*in+i])
			for k := 0; k < r; k++ {
				x += s * float64(b[o*r+k]) * float64(a[k*in+i])
			}
			v[o*in+i] = x
			ss += x * x
		}
		if mag != nil {
			n := math.Sqrt(ss)
			for i := 0; i < in; i++ {
				v[o*in+i] *= float64(mag[o]) / n
			}
		}
	}
	return v
}

// ulp is the spacing of dtype dt at the magnitude of v (a bound on one rounding).
func ulp(v float64, dt safetensors.DType) float64 {
	bits := map[safetensors.DType]int{safetensors.F32: 23, safetensors.BF16: 7, safetensors.F16: 10}[dt]
	_, e := math.Frexp(math.Abs(v))
	return math.Ldexp(1, e-bits)
}

func TestMerge(t *testing.T) {
	pat := func(kv ...any) peft.Patterns {
		var p peft.Patterns
		for i := 0; i < len(kv); i += 2 {
			p = append(p, peft.Pattern{Key: kv[i].(string), Value: kv[i+1].(float64)})
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		base   tinymodel.Options
		cfg    func(*peft.Config)
		dtype  safetensors.DType // Options.DType
		wantDT safetensors.DType
	}{
		{"lora f32", tinymodel.Options{}, func(c *peft.Config) {}, "", safetensors.F32},
		{"rslora bf16 all-linear", tinymodel.Options{DType: safetensors.BF16, NumLayers: 1},
			func(c *peft.Config) { c.UseRslora = true; c.TargetModules = slices.Clone(modelcfg.Projections) }, "", safetensors.BF16},
		{"patterns sharded base", tinymodel.Options{Shards: 3, NumLayers: 3},
			func(c *peft.Config) {
				c.TargetModules = []string{"q_proj", "v_proj", "down_proj"}
				c.RankPattern = pat(`layers\.1\.self_attn\.q_proj`, 2.0, "down_proj", 6.0)
				c.AlphaPattern = pat(`v_proj`, 3.0)
			}, "", safetensors.F32},
		{"dora qwen2 f32", tinymodel.Options{Arch: "qwen2"},
			func(c *peft.Config) {
				c.UseDora = true
				c.TargetModules = []string{"q_proj", "k_proj", "o_proj", "up_proj"}
			}, "", safetensors.F32},
		{"dora rslora bf16 to f32", tinymodel.Options{DType: safetensors.BF16, Tied: true},
			func(c *peft.Config) {
				c.UseDora = true
				c.UseRslora = true
				c.TargetModules = []string{"v_proj", "gate_proj"}
			}, safetensors.F32, safetensors.F32},
		{"lora f16 to bf16", tinymodel.Options{DType: safetensors.F16, Arch: "mistral"}, func(c *peft.Config) {}, safetensors.BF16, safetensors.BF16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseDir, mcfg := writeBase(t, tc.base)
			cfg := peft.NewConfig("test/base", 4, 8, 0, []string{"q_proj", "v_proj"})
			tc.cfg(cfg)
			adDir, ad := writeAdapter(t, mcfg, cfg, 1)
			out := filepath.Join(t.TempDir(), "merged")
			var progress int
			res, err := Merge(context.Background(), baseDir, adDir, out, Options{DType: tc.dtype, Progress: func(done, total int) { progress = done }})
			if err != nil {
				t.Fatal(err)
			}
			if res.DType != tc.wantDT || res.Merged != len(ad)/map[bool]int{false: 2, true: 3}[cfg.UseDora] || progress != res.Tensors {
				t.Errorf("result %+v (progress %d)", res, progress)
			}
			base, err := safetensors.OpenDir(baseDir)
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			got, err := safetensors.OpenDir(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if !slices.Equal(got.Names(), base.Names()) {
				t.Fatalf("merged tensors %v, want %v", got.Names(), base.Names())
			}
			adapted := 0
			for _, name := range base.Names() {
				bi, _ := base.Info(name)
				gi, _ := got.Info(name)
				if gi.DType != tc.wantDT || !slices.Equal(gi.Shape, bi.Shape) {
					t.Fatalf("%s: %s %v, want %s %v", name, gi.DType, gi.Shape, tc.wantDT, bi.Shape)
				}
				w, _ := base.Float32(name)
				g, _ := got.Float32(name)
				var want []float64
				if k, err := parseWeight(name); err == nil && cfg.Targets(k.Module()) {
					adapted++
					a, b := ad[peft.KeyA(k.Layer, k.Proj)], ad[peft.KeyB(k.Layer, k.Proj)]
					var mag []float32
					if cfg.UseDora {
						mag = ad[peft.KeyMagnitude(k.Layer, k.Proj)].Data
					}
					want = reference(w, bi.Shape[0], bi.Shape[1], a.Data, b.Data, a.Shape[0], cfg.ScaleFor(k.Module()), mag)
				} else {
					if gi.DType == bi.DType {
						gb, _ := got.Bytes(name)
						bb, _ := base.Bytes(name)
						if !bytes.Equal(gb, bb) {
							t.Errorf("%s: not adapted, but its bytes changed", name)
						}
						continue
					}
					want = make([]float64, len(w))
					for i, v := range w {
						want[i] = float64(v)
					}
				}
				maxAbs := 0.0
				for _, v := range want {
					maxAbs = max(maxAbs, math.Abs(v))
				}
				for i := range want {
					// One rounding to the output dtype, plus f32 arithmetic
					// (errors relative to the tensor's scale).
					if d := math.Abs(float64(g[i]) - want[i]); d > ulp(want[i], gi.DType)+1e-6*maxAbs {
						t.Fatalf("%s[%d] = %v, want %v (diff %g)", name, i, g[i], want[i], d)
					}
				}
			}
			if adapted != res.Merged {
				t.Errorf("checked %d adapted weights, merge reports %d", adapted, res.Merged)
			}
			// config.json carries the output dtype; side files are copied.
			ocfg, err := modelcfg.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if ocfg.TorchDtype != torchDTypes[tc.wantDT] {
				t.Errorf("torch_dtype %q, want %q", ocfg.TorchDtype, torchDTypes[tc.wantDT])
			}
			for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
				a, _ := os.ReadFile(filepath.Join(baseDir, f))
				b, err := os.ReadFile(filepath.Join(out, f))
				if err != nil || !bytes.Equal(a, b) {
					t.Errorf("%s not copied: %v", f, err)
				}
			}
		})
	}
}

// parseWeight maps "model.layers.{i}.{block}.{proj}.weight" to its adapter key.
func parseWeight(name string) (peft.Key, error) {
	return peft.ParseKey("base_model.model." + strings.TrimSuffix(name, ".weight") + ".lora_A.weight")
}

func TestMergeShards(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 3, DType: safetensors.BF16})
	cfg := peft.NewConfig("b", 4, 8, 0, []string{"q_proj", "down_proj"})
	adDir, _ := writeAdapter(t, mcfg, cfg, 2)
	single := filepath.Join(t.TempDir(), "single")
	if _, err := Merge(context.Background(), baseDir, adDir, single, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(single, safetensors.IndexFileName)); !os.IsNotExist(err) {
		t.Errorf("single-file merge wrote an index (%v)", err)
	}
	const max = 40_000
	sharded := filepath.Join(t.TempDir(), "sharded")
	res, err := Merge(context.Background(), baseDir, adDir, sharded, Options{MaxShardSize: max})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) < 3 {
		t.Fatalf("%d shards, want several", len(res.Files))
	}
	idx, err := safetensors.ReadIndex(filepath.Join(sharded, safetensors.IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := idx.Metadata["total_size"].(float64); int64(ts) != res.TotalSize {
		t.Errorf("index total_size %v, want %d", idx.Metadata["total_size"], res.TotalSize)
	}
	var sum int64
	for i, file := range res.Files {
		if file != safetensors.ShardFileName(i+1, len(res.Files)) {
			t.Errorf("shard %d is %s", i, file)
		}
		f, err := safetensors.Open(filepath.Join(sharded, file))
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for _, n := range f.Names() {
			info, _ := f.Info(n)
			size += info.NumBytes()
			if idx.WeightMap[n] != file {
				t.Errorf("index maps %s to %q, it is in %s", n, idx.WeightMap[n], file)
			}
		}
		if size > max && len(f.Names()) > 1 {
			t.Errorf("%s holds %d bytes in %d tensors, over the %d limit", file, size, len(f.Names()), max)
		}
		sum += size
		f.Close()
	}
	if sum != res.TotalSize || len(idx.WeightMap) != res.Tensors {
		t.Errorf("shards hold %d bytes / index %d tensors; result %+v", sum, len(idx.WeightMap), res)
	}
	// Same tensors, same bytes as the single-file merge.
	a, _ := safetensors.OpenDir(single)
	b, _ := safetensors.OpenDir(sharded)
	defer a.Close()
	defer b.Close()
	for _, n := range a.Names() {
		x, _ := a.Bytes(n)
		y, err := b.Bytes(n)
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between single and sharded output (%v)", n, err)
		}
	}
}

func TestMergeOutputDir(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 1})
	adDir, _ := writeAdapter(t, mcfg, peft.NewConfig("b", 2, 4, 0, []string{"v_proj"}), 3)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty directory is fine.
	if _, err := Merge(context.Background(), baseDir, adDir, out, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "stale.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), baseDir, adDir, out, Options{}); !errors.Is(err, ErrOutputNotEmpty) {
		t.Fatalf("merge into a non-empty dir: %v", err)
	}
	if _, err := Merge(context.Background(), baseDir, adDir, out, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "stale.txt")); err != nil || string(b) != "x" {
		t.Errorf("overwrite removed or changed a file merge does not write: %q, %v", b, err)
	}
	// A cancelled merge leaves nothing behind.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out2 := filepath.Join(filepath.Dir(out), "out2")
	if _, err := Merge(ctx, baseDir, adDir, out2, Options{}); err == nil {
		t.Fatal("cancelled merge succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if e.Name() != "out" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestMergeErrors(t *testing.T) {
	baseDir, mcfg := writeBase(t, tinymodel.Options{NumLayers: 2})
	otherDir, other := writeBase(t, tinymodel.Options{NumLayers: 2, HiddenSize: 32})
	_ = otherDir
	good := peft.NewConfig("b", 2, 4, 0, []string{"q_proj"})
	goodDir, goodTensors := writeAdapter(t, mcfg, good, 4)

	edit := func(t *testing.T, src string, fn func(cfg map[string]any, tensors map[string]peft.Tensor)) string {
		t.Helper()
		dir := t.TempDir()
		data, _ := os.ReadFile(filepath.Join(src, peft.ConfigFileName))
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		tensors := map[string]peft.Tensor{}
		for k, v := range goodTensors {
			tensors[k] = v
		}
		fn(cfg, tensors)
		data, _ = json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(dir, peft.ConfigFileName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var st []safetensors.Tensor
		for k, v := range tensors {
			x, err := safetensors.NewTensor(k, safetensors.F32, v.Shape, v.Data)
			if err != nil {
				t.Fatal(err)
			}
			st = append(st, x)
		}
		if err := safetensors.WriteFile(filepath.Join(dir, peft.WeightsFileName), st, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	smallDir, _ := writeAdapter(t, other, good, 5)
	for _, tc := range []struct {
		name    string
		adapter string
		want    string
	}{
		{"other base", smallDir, "do not fit"},
		{"modules_to_save", edit(t, goodDir, func(c map[string]any, _ map[string]peft.Tensor) { c["modules_to_save"] = []string{"lm_head"} }), "modules_to_save"},
		{"regex targets", edit(t, goodDir, func(c map[string]any, _ map[string]peft.Tensor) { c["target_modules"] = ".*q_proj" }), "regular expression"},
		{"embedding adapter", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) {
			m["base_model.model.model.embed_tokens.lora_embedding_A"] = peft.Tensor{Shape: []int{2, 8}, Data: make([]float32, 16)}
		}), "embedding adapter"},
		{"saved lm_head", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) {
			m["base_model.model.lm_head.modules_to_save.default.weight"] = peft.Tensor{Shape: []int{2}, Data: make([]float32, 2)}
		}), "modules_to_save"},
		{"missing module", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) {
			delete(m, peft.KeyA(1, "q_proj"))
			delete(m, peft.KeyB(1, "q_proj"))
		}), "model.layers.1.self_attn.q_proj"},
		{"layers_to_transform", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) { c["layers_to_transform"] = []int{0} }), "outside layers_to_transform"},
		{"unknown target", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) { c["target_modules"] = []string{"q_proj", "c_attn"} }), `"c_attn"`},
		{"embed target", edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) {
			c["target_modules"] = []string{"q_proj", "embed_tokens"}
		}), "embedding adapters"},
		{"no adapter", t.TempDir(), "adapter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := Merge(context.Background(), baseDir, tc.adapter, out, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("failed merge created %s", out)
			}
		})
	}
	// layers_to_transform that matches the tensors present is accepted.
	partial := edit(t, goodDir, func(c map[string]any, m map[string]peft.Tensor) {
		c["layers_to_transform"] = 0
		delete(m, peft.KeyA(1, "q_proj"))
		delete(m, peft.KeyB(1, "q_proj"))
	})
	res, err := Merge(context.Background(), baseDir, partial, filepath.Join(t.TempDir(), "o"), Options{})
	if err != nil || res.Merged != 1 {
		t.Fatalf("layers_to_transform 0: %+v, %v", res, err)
	}
	if _, err := Merge(context.Background(), baseDir, goodDir, filepath.Join(t.TempDir(), "o"), Options{DType: "I8"}); err == nil {
		t.Error("dtype I8 accepted")
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"5GB", 5_000_000_000}, {"500MB", 500_000_000}, {"2GiB", 2 << 30}, {"1.5kb", 1500},
		{"1000", 1000}, {" 10 MiB ", 10 << 20}, {"7B", 7},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "GB", "5XB", "-1", "0", "0.1"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestOrderAndPlan(t *testing.T) {
	names := []string{"lm_head.weight", "model.layers.10.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weight",
		"model.norm.weight", "model.embed_tokens.weight", "model.layers.2.input_layernorm.weight"}
	got := orderNames(names)
	want := []string{"model.embed_tokens.weight", "model.layers.2.input_layernorm.weight", "model.layers.2.mlp.up_proj.weight",
		"model.layers.10.mlp.up_proj.weight", "lm_head.weight", "model.norm.weight"}
	if !slices.Equal(got, want) {
		t.Errorf("orderNames = %v, want %v", got, want)
	}
	ti := func(n string, elems int) safetensors.TensorInfo {
		return safetensors.TensorInfo{Name: n, DType: safetensors.F32, Shape: []int{elems}}
	}
	shards := planShards([]safetensors.TensorInfo{ti("a", 10), ti("b", 10), ti("c", 100), ti("d", 5), ti("e", 5)}, 80)
	var sizes []int
	for _, s := range shards {
		sizes = append(sizes, len(s))
	}
	// a+b = 80 bytes fit; c (400 bytes) sits alone; d+e share the last.
	if !slices.Equal(sizes, []int{2, 1, 2}) {
		t.Errorf("shard sizes %v, want [2 1 2]", sizes)
	}
}
