package config

import (
	"strings"
	"testing"
)

// --base-dtype defaults to auto, takes bf16 and f32 from a flag or the YAML file,
// and anything else is an error naming it.
func TestBaseDType(t *testing.T) {
	if d := Default(); d.BaseDType != "auto" {
		t.Errorf("default base-dtype %q, want auto", d.BaseDType)
	}
	cfg, _, err := load(t, []string{"--train-file", "x.jsonl", "--base-dtype", "f32"}, "")
	if err != nil || cfg.BaseDType != "f32" {
		t.Errorf("--base-dtype f32: %q, %v", cfg.BaseDType, err)
	}
	cfg, _, err = load(t, []string{"--train-file", "x.jsonl"}, "base_dtype: bf16\n")
	if err != nil || cfg.BaseDType != "bf16" {
		t.Errorf("YAML base_dtype bf16: %q, %v", cfg.BaseDType, err)
	}
	for _, bad := range []string{"f16", "fp32", "none"} {
		_, _, err := load(t, []string{"--train-file", "x.jsonl", "--base-dtype", bad}, "")
		if err == nil || !strings.Contains(err.Error(), "--base-dtype") || !strings.Contains(err.Error(), "auto, bf16, f32") {
			t.Errorf("--base-dtype %s: %v, want an error naming the flag and the allowed values", bad, err)
		}
	}
}
