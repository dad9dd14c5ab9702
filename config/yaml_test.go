package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNonFiniteNumbers(t *testing.T) {
	for _, name := range []string{"lr", "alpha", "dropout", "weight-decay", "warmup-ratio", "max-grad-norm",
		"val-split", "upper-lr-mult", "orth-reg"} {
		for _, v := range []struct{ arg, shown string }{{"NaN", "NaN"}, {"Inf", "+Inf"}, {"-Inf", "-Inf"}, {"+inf", "+Inf"}} {
			_, _, err := load(t, []string{"--train-file", "x.jsonl", "--" + name, v.arg}, "")
			want := "--" + name + " " + v.shown
			if err == nil || !strings.Contains(err.Error(), want+": must be a finite number") {
				t.Errorf("--%s %s: error %v, want %q", name, v.arg, err, want+": must be a finite number")
				continue
			}
			if n := strings.Count(err.Error(), "--"+name+" "); n != 1 {
				t.Errorf("--%s %s reported %d times: %v", name, v.arg, n, err)
			}
		}
	}
	// YAML: .nan and .inf are YAML's spellings.
	for _, y := range []string{"lr: .nan\n", "lr: .inf\n", "weight_decay: -.inf\n", "lr: NaN\n"} {
		_, _, err := load(t, []string{"--train-file", "x.jsonl"}, y)
		if err == nil || !strings.Contains(err.Error(), "must be a finite number") && !strings.Contains(err.Error(), "want a number") {
			t.Errorf("YAML %q: error %v, want a refusal", y, err)
		}
	}
	// Finite values still pass.
	if cfg, _, err := load(t, []string{"--train-file", "x.jsonl", "--lr", "1e-3", "--weight-decay", "0"}, ""); err != nil || cfg.LR != 1e-3 {
		t.Errorf("finite values: %v", err)
	}
}

func TestYAMLNullKeepsDefault(t *testing.T) {
	for _, y := range []string{"output: ~\n", "output: null\n", "output:\n", "output: ~\nrank: ~\ntargets: ~\n"} {
		cfg, o, err := load(t, []string{"--train-file", "x.jsonl"}, y)
		if err != nil {
			t.Errorf("YAML %q: %v", y, err)
			continue
		}
		d := Default()
		if cfg.Output != d.Output || cfg.Rank != d.Rank || strings.Join(cfg.Targets, ",") != strings.Join(d.Targets, ",") {
			t.Errorf("YAML %q: output %q rank %d targets %v, want the defaults", y, cfg.Output, cfg.Rank, cfg.Targets)
		}
		if o.Explicit("output") {
			t.Errorf("YAML %q: a null output counts as given", y)
		}
	}
	// A quoted "~" is a string, expanded like a path.
	home := fakeHome(t)
	cfg, _, err := load(t, []string{"--train-file", "x.jsonl"}, "output: \"~\"\n")
	if err != nil || cfg.Output != home {
		t.Errorf(`output: "~": %q %v, want %q`, cfg.Output, err, home)
	}
}

func fakeHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	old := userHomeDir
	userHomeDir = func() (string, error) { return home, nil }
	t.Cleanup(func() { userHomeDir = old })
	return home
}

func TestTildeExpansion(t *testing.T) {
	home := fakeHome(t)
	y := "output: ~/runs/a\ntrain_file: ~/data/train.jsonl\nval-file: ~/data/val.jsonl\nmodel: ~/models/qwen\nresume-adapter: ~/ad\n"
	cfg, _, err := load(t, nil, y)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{cfg.Output, filepath.Join(home, "runs/a")}, {cfg.TrainFile, filepath.Join(home, "data/train.jsonl")},
		{cfg.ValFile, filepath.Join(home, "data/val.jsonl")}, {cfg.Model, filepath.Join(home, "models/qwen")},
		{cfg.ResumeAdapter, filepath.Join(home, "ad")},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	// Flags given as --output=~/x reach us unexpanded too.
	cfg, _, err = load(t, []string{"--train-file", "x.jsonl", "--output=~/o", "--resume", "~/o/checkpoint-5"}, "")
	if err != nil || cfg.Output != filepath.Join(home, "o") || cfg.Resume != filepath.Join(home, "o/checkpoint-5") {
		t.Errorf("flags: %q %q %v", cfg.Output, cfg.Resume, err)
	}
	// Other values are left alone.
	cfg, _, err = load(t, []string{"--train-file", "a~/b", "--model", "Qwen/Qwen2.5-0.5B", "--output", "out~"}, "")
	if err != nil || cfg.TrainFile != "a~/b" || cfg.Model != "Qwen/Qwen2.5-0.5B" || cfg.Output != "out~" {
		t.Errorf("untouched: %+v %v", cfg, err)
	}
	// ~user is refused.
	_, _, err = load(t, []string{"--train-file", "x.jsonl"}, "output: ~bob/runs\n")
	if err == nil || !strings.Contains(err.Error(), "run.yaml:1: output: ~bob/runs: ~user paths are not expanded") {
		t.Errorf("~bob: %v", err)
	}
	// No home directory: a clear error, not a folder named "~".
	userHomeDir = func() (string, error) { return "", errors.New("$HOME is not defined") }
	_, _, err = load(t, []string{"--train-file", "x.jsonl", "--output", "~/x"}, "")
	if err == nil || !strings.Contains(err.Error(), "--output ~/x: cannot expand ~") {
		t.Errorf("no home: %v", err)
	}
}

func TestYAMLDocumentsAndAliases(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       string // error text, "" for success
		check      func(*Train) bool
	}{
		{"second document", "rank: 8\n---\nrank: 16\n", "run.yaml:3: a second YAML document", nil},
		{"second document after separator", "---\nrank: 8\n---\nlr: 1\n", "run.yaml:4: a second YAML document", nil},
		{"empty trailing document", "rank: 16\n---\n", "", func(c *Train) bool { return c.Rank == 16 }},
		{"anchor and alias", "rank: &x 16\nsave-steps: *x\n", "", func(c *Train) bool { return c.Rank == 16 && c.SaveSteps == 16 }},
		{"alias in a list", "output: &o q_proj\ntargets: [*o, v_proj]\n", "", func(c *Train) bool {
			return strings.Join(c.Targets, ",") == "q_proj,v_proj"
		}},
		{"merge key", "<<: {rank: 32, alpha: 64}\nrank: 4\n", "", func(c *Train) bool { return c.Rank == 4 && c.Alpha == 64 }},
		{"merge list", "<<: [{rank: 32}, {lr: 0.5}]\n", "", func(c *Train) bool { return c.Rank == 32 && c.LR == 0.5 }},
		{"merge of a scalar", "<<: 5\n", "run.yaml:1: <<: a merge key wants a mapping", nil},
		{"unknown merged key", "<<: {rnak: 3}\n", "rnak: unknown key", nil},
		{"alias to a mapping", "output: &m {a: 1}\nmodel: *m\n", "run.yaml:1: output: want a single value, not a mapping", nil},
	}
	for _, c := range cases {
		cfg, _, err := load(t, []string{"--train-file", "x.jsonl"}, c.yaml)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		case c.check != nil && !c.check(cfg):
			t.Errorf("%s: wrong result %+v", c.name, cfg)
		}
	}
}

func TestLoadYAMLBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	data := []byte("rank: 8\n# " + strings.Repeat("x", MaxYAMLBytes) + "\n")
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(small, []byte("rank: 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, want string
		rank       int
	}{
		{big, big + ": larger than 1024 KiB", 0},
		{filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "missing.yaml") + ": cannot read the config file: no such file", 0},
		{dir, dir + ": cannot read the config file", 0},
		{small, "", 12},
	}
	for _, c := range cases {
		cfg := &Train{}
		fs := NewFlagSet(cfg)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		err := LoadYAML(fs, c.path, Origins{})
		if c.want == "" {
			if err != nil || cfg.Rank != c.rank {
				t.Errorf("%s: rank %d, err %v", c.path, cfg.Rank, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
		if _, ok := AsError(err); !ok {
			t.Errorf("%s: %T is not *Error", c.path, err)
		}
	}
	if err := ApplyYAML(NewFlagSet(&Train{}), data, "run.yaml", Origins{}); err == nil || !strings.Contains(err.Error(), "run.yaml: larger than") {
		t.Errorf("ApplyYAML of a large file: %v", err)
	}
}
