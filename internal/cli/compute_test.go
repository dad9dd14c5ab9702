package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// TestMain runs this package's tests with the native bf16 kernels hidden, so that
// --compute auto resolves to f32 as on a CPU without AVX512_BF16: the CLI tests
// compare against f32 references (goldens at 1e-5, memorisation curves) whatever
// machine runs them. The bf16 path is exercised explicitly below (and by model's and
// train's bf16-compute goldens).
func TestMain(m *testing.M) {
	kernels.SetNativeBF16(false)
	os.Exit(m.Run())
}

func TestComputeFlag(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--compute", "fp16"},
		{"eval", "--model", goldenDir("llama_lora_bf16"), "--data", "x.jsonl", "--compute", "half"},
		{"train", "--model", goldenDir("llama_lora_bf16"), "--train-file", "x.jsonl", "--compute", "fp8"},
	} {
		code, _, errOut := run(t, args...)
		if code != 2 || !strings.Contains(errOut, "--compute") && !strings.Contains(errOut, "compute") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error naming --compute", args, code, errOut)
		}
	}
}

// TestComputeAuto checks what --compute auto resolves to with and without the native
// kernels, as --print-config reports it.
func TestComputeAuto(t *testing.T) {
	defer kernels.SetNativeBF16(false)
	data := writeComputeRows(t)
	for _, native := range []bool{false, true} {
		kernels.SetNativeBF16(native)
		want := "compute: auto → f32"
		if native && kernels.NativeBF16() {
			want = "compute: auto → bf16"
		}
		code, out, errOut := run(t, "train", "--print-config", "--model", goldenDir("llama_lora_bf16"), "--train-file", data)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, want) {
			t.Errorf("native bf16 %v: --print-config lacks %q:\n%s", native, want, out)
		}
	}
}

// TestEvalCode14mBF16Compute is TestEvalCode14m's golden with --compute bf16: the
// loss is within 3e-3 relative of the float64 reference (model's bf16 goldens bound
// the loss at that), and not equal to the f32 result (the bf16 kernels did run).
func TestEvalCode14mBF16Compute(t *testing.T) {
	modelDir := filepath.Join("..", "..", "..", "shared", "models", "code14m")
	if _, err := os.Stat(filepath.Join(modelDir, "config.json")); err != nil {
		t.Skip("../shared/models/code14m absent")
	}
	g := goldenDir("code14m_eval")
	var want struct{ Loss float64 }
	data, err := os.ReadFile(filepath.Join(g, "expected.json"))
	if err != nil {
		t.Fatalf("the committed code14m_eval golden is missing: %v", err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	kernels.SetNativeBF16(true) // TestMain hid them
	defer kernels.SetNativeBF16(false)
	loss := map[string]float64{}
	for _, c := range []string{"f32", "bf16"} {
		code, out, errOut := runEngineCmd(t, "eval", "--model", modelDir, "--data", filepath.Join(g, "rows.jsonl"), "--json", "--compute", c)
		if code != 0 {
			t.Fatalf("--compute %s: exit %d: %s", c, code, errOut)
		}
		var r evalResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		loss[c] = r.Loss
	}
	t.Logf("loss f32 %.8g, bf16 %.8g, reference %.8g", loss["f32"], loss["bf16"], want.Loss)
	if loss["bf16"] == loss["f32"] || math.Abs(loss["bf16"]-want.Loss) > 3e-3*want.Loss {
		t.Errorf("eval loss with bf16 compute %.8g (f32 %.8g): want different from f32 and within 3e-3 of %.8g", loss["bf16"], loss["f32"], want.Loss)
	}
}

func writeComputeRows(t *testing.T) string {
	t.Helper()
	p := t.TempDir() + "/rows.jsonl"
	rows := `{"text":"cube([10, 20, 30]); translate([1,2,3]) sphere(r=5);"}` + "\n" +
		`{"text":"module m(a) { cylinder(h=a, r=2); } m(4); m(7);"}` + "\n"
	if err := os.WriteFile(p, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
