package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/catalog"
)

func TestListModelsText(t *testing.T) {
	fakeHardware(t, 22)
	code, out, stderr := run(t, "list-models")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "MODEL") || !strings.Contains(lines[0], "NF4") || !strings.Contains(lines[0], "FITS HERE") {
		t.Errorf("header %q", lines[0])
	}
	for _, e := range catalog.Entries() {
		if !strings.Contains(out, e.ID) {
			t.Errorf("%s missing", e.ID)
		}
	}
	var row7b, row32b string
	for _, l := range lines {
		if strings.HasPrefix(l, "Qwen/Qwen2.5-Coder-7B-Instruct ") {
			row7b = l
		}
		if strings.HasPrefix(l, "Qwen/Qwen2.5-Coder-32B-Instruct ") {
			row32b = l
		}
	}
	if !strings.Contains(row7b, "7.62B") || !strings.Contains(row7b, "yes: int8, batch 4") {
		t.Errorf("7B row %q", row7b)
	}
	if !strings.HasSuffix(strings.TrimSpace(row32b), "no") {
		t.Errorf("32B row %q should not fit 22 GiB", row32b)
	}
}

func TestListModelsJSON(t *testing.T) {
	fakeHardware(t, 22)
	code, out, stderr := run(t, "list-models", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []struct {
		ID            string           `json:"id"`
		Architecture  string           `json:"architecture"`
		Params        int64            `json:"params"`
		ContextLength int              `json:"context_length"`
		MemoryBytes   map[string]int64 `json:"memory_bytes"`
		Fits          bool             `json:"fits"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rows) != len(catalog.Entries()) {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		m := r.MemoryBytes
		if !(m["nf4"] < m["int8"] && m["int8"] < m["bf16"]) || r.Params == 0 || r.ContextLength == 0 || r.Architecture == "" {
			t.Errorf("row %+v", r)
		}
	}
	if rows[0].ID != "Qwen/Qwen2.5-Coder-0.5B-Instruct" || rows[0].Params != 494032768 || !rows[0].Fits {
		t.Errorf("first row %+v", rows[0])
	}
}

// The memory columns are GiB and the legend says what INT8 is: weight-only per-row
// absmax, not bitsandbytes' LLM.int8; --help says the same.
func TestListModelsLegend(t *testing.T) {
	fakeHardware(t, 22)
	code, out, stderr := run(t, "list-models")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{" GiB ", "INT8: weight-only int8, one absmax scale per output row", "Not bitsandbytes' LLM.int8", "no outlier decomposition"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " GB ") {
		t.Errorf("memory printed as GB (it is GiB):\n%s", out)
	}
	_, help, _ := run(t, "list-models", "--help")
	if !strings.Contains(help, "weight-only int8") || !strings.Contains(help, "LLM.int8") {
		t.Errorf("--help does not describe INT8:\n%s", help)
	}
}

// Every --help that offers --quantization int8 says it is weight-only per-row absmax,
// not LLM.int8.
func TestHelpDescribesInt8(t *testing.T) {
	for _, cmd := range [][]string{{"train", "--help"}, {"eval", "--help"}, {"generate", "--help"}, {"bench", "--help"}, {"--help"}} {
		_, help, _ := run(t, cmd...)
		if !strings.Contains(help, "weight-only") || !strings.Contains(help, "LLM.int8") {
			t.Errorf("bidora %s does not say INT8 is weight-only, not LLM.int8:\n%s", strings.Join(cmd, " "), help)
		}
	}
}
