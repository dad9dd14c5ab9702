package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInfoAbsurdConfig: `bidora info` on a config.json with absurd sizes used to
// print "0M parameters … fits yes" from overflowed arithmetic; it now refuses the
// config, naming the field.
func TestInfoAbsurdConfig(t *testing.T) {
	fakeHardware(t, 22)
	base := `"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"vocab_size":10`
	cases := []struct {
		name, config, want string
	}{
		{"2^62 layers", `{` + base + `,"num_hidden_layers":4611686018427387904}`, "num_hidden_layers is 4611686018427387904"},
		{"max_position_embeddings 0", `{` + base + `,"num_hidden_layers":2,"max_position_embeddings":0}`, "max_position_embeddings must be a positive integer"},
		{"rope_theta negative", `{` + base + `,"num_hidden_layers":2,"rope_theta":-1}`, "rope_theta must be a positive number"},
		{"array", `[` + `{` + base + `}]`, "config.json: want a JSON object, got an array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := run(t, "info", "--model", dir)
			if code == ExitOK || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want a failure naming %q", code, stderr, c.want)
			}
			if strings.Contains(out, "fits") {
				t.Errorf("printed a recommendation: %s", out)
			}
		})
	}
}
