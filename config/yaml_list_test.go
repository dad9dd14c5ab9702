package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestYAMLListItems: YAML list items are taken one by one: an item with a comma, an
// empty item or a quote are refused or kept whole, never re-split by CSV parsing.
func TestYAMLListItems(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string // nil: refused
	}{
		{"targets: [q_proj, v_proj]\n", []string{"q_proj", "v_proj"}},
		{"targets: [\"q_proj,v_proj\"]\n", nil},
		{"targets: [q_proj, '']\n", nil},
		{"targets: ['\"x']\n", []string{`"x`}},
	} {
		cfg := Default()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		AddFlags(fs, cfg)
		err := ApplyYAML(fs, []byte(tc.yaml), "run.yaml", Origins{})
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), "run.yaml:1") {
				t.Errorf("%q: err %v, want a refusal naming run.yaml:1", tc.yaml, err)
			}
			continue
		}
		if err != nil || strings.Join(cfg.Targets, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: targets %q (err %v), want %q", tc.yaml, cfg.Targets, err, tc.want)
		}
	}
}
