//go:build long

package merge

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// Environment of the child process that runs one merge for the benchmark.
const (
	childEnv = "BIDORA_MERGE_CHILD"
	argsEnv  = "BIDORA_MERGE_ARGS" // base|adapter|out|maxShardBytes
)

// TestMergeChild runs one merge when started by BenchmarkMergePeakRSS, so that
// the child's peak RSS measures the merge alone.
func TestMergeChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by BenchmarkMergePeakRSS")
	}
	var base, adapter, out string
	var max int64
	if _, err := fmt.Sscanf(os.Getenv(argsEnv), "%s %s %s %d", &base, &adapter, &out, &max); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), base, adapter, out, Options{MaxShardSize: max, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	// VmHWM is this process's own peak (ru_maxrss would include the parent's
	// memory at fork time).
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Printf("PEAK_RSS_KB=%s\n", strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), " kB"))
		}
	}
}

// BenchmarkMergePeakRSS merges a random all-linear r=16 adapter into a random
// model of the qwen2.5-0.5b shape in bf16 (~1 GB) in a child process and
// reports the child's peak RSS next to the output shard size.
func BenchmarkMergePeakRSS(b *testing.B) {
	e, ok := catalog.Find("qwen2.5-0.5b")
	if !ok {
		b.Fatal("no qwen2.5-0.5b preset")
	}
	c := e.Config
	dir := b.TempDir()
	baseDir := filepath.Join(dir, "base")
	if err := tinymodel.Write(baseDir, tinymodel.Options{
		Arch: c.ModelType, HiddenSize: c.HiddenSize, IntermediateSize: c.IntermediateSize, NumLayers: c.NumHiddenLayers,
		NumHeads: c.NumAttentionHeads, NumKVHeads: c.NumKeyValueHeads, HeadDim: c.HeadDim, VocabSize: c.VocabSize,
		Tied: c.TieWordEmbeddings, DType: safetensors.BF16, Shards: 2,
	}); err != nil {
		b.Fatal(err)
	}
	mcfg := c
	for _, dora := range []bool{false, true} {
		cfg := peft.NewConfig("qwen2.5-0.5b", 16, 32, 0, []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
		cfg.UseDora = dora
		adDir, _ := writeAdapter(b, &mcfg, cfg, 1)
		for _, shard := range []int64{200_000_000, DefaultMaxShardSize} {
			b.Run(fmt.Sprintf("dora=%v/shard=%dMB", dora, shard/1_000_000), func(b *testing.B) {
				out := filepath.Join(dir, "out")
				var peak int64
				var total int64
				for i := 0; i < b.N; i++ {
					cmd := exec.Command(os.Args[0], "-test.run=^TestMergeChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), childEnv+"=1", fmt.Sprintf("%s=%s %s %s %d", argsEnv, baseDir, adDir, out, shard))
					msg, err := cmd.CombinedOutput()
					if err != nil {
						b.Fatalf("%v: %s", err, msg)
					}
					i := strings.Index(string(msg), "PEAK_RSS_KB=")
					if i < 0 {
						b.Fatalf("child reported no peak RSS: %s", msg)
					}
					var kb int64
					if _, err := fmt.Sscanf(string(msg[i:]), "PEAK_RSS_KB=%d", &kb); err != nil {
						b.Fatal(err)
					}
					peak = max(peak, kb*1024)
				}
				res, err := safetensors.OpenDir(out)
				if err != nil {
					b.Fatal(err)
				}
				var largest int64
				for _, f := range res.Files() {
					fi, _ := os.Stat(f.Path())
					total += fi.Size()
					largest = max(largest, fi.Size())
				}
				res.Close()
				b.SetBytes(total)
				b.ReportMetric(float64(peak)/1e6, "peak_rss_MB")
				b.ReportMetric(float64(largest)/1e6, "largest_shard_MB")
				b.ReportMetric(float64(total)/1e6, "model_MB")
			})
		}
	}
}
