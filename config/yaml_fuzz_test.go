package config

import (
	"bytes"
	"github.com/bidora/bidora/internal/testutil"
	"reflect"
	"strings"
	"testing"
)

// fuzzLoad applies a YAML file named run.yaml over one command-line flag and
// resolves, as the CLI does.
func fuzzLoad(t *testing.T, data []byte) (*Train, error, error) {
	cfg := &Train{}
	fs := NewFlagSet(cfg)
	if err := fs.Parse([]string{"--train-file", "x.jsonl"}); err != nil {
		t.Fatal(err)
	}
	o := FlagOrigins(fs)
	if err := ApplyYAML(fs, data, "run.yaml", o); err != nil {
		return cfg, err, nil
	}
	return cfg, nil, cfg.Resolve(o)
}

// FuzzYAML feeds arbitrary bytes to ApplyYAML as a run config. Every problem
// must come back as *Error naming the file (the CLI's exit status 2 depends
// on it), never as a panic; reading must not allocate far more than the file
// (YAML aliases can expand); and a config that resolves, written back with
// WriteYAML and read again, is the same config.
func FuzzYAML(f *testing.F) {
	for _, s := range []string{
		"rank: 16\nlr: 1e-4\nbatch_size: 2\ntargets: [q_proj, v_proj]\nrslora: false\n",
		"method: bidora\nhypergrad: first-order\nupper-lr-mult: 3\nquantization: nf4\nwarmup_ratio: 0.03\n",
		"dora: true\nmethod: lora\n",
		"targets:\n  - q_proj\n  - {a: b}\n",
		"output: ~/runs/x\ntrain-file: other.jsonl\n",
		"a: &x [1, 2]\nb: *x\n",
		"rank: 8\nrank: 9\n",
		"lr: [1, 2]\n",
		"- rank\n",
		"rank: [\n",
		"\xef\xbb\xbfrank: 4\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg *Train
		var yerr, rerr error
		if n := testutil.AllocBytes(func() { cfg, yerr, rerr = fuzzLoad(t, data) }); n > 256*uint64(len(data))+4<<20 {
			t.Fatalf("reading %d bytes of YAML allocated %d bytes", len(data), n)
		}
		if yerr != nil {
			e, ok := AsError(yerr)
			if !ok || !strings.HasPrefix(e.Where, "run.yaml") {
				t.Fatalf("ApplyYAML error %T %v is not an *Error naming run.yaml", yerr, yerr)
			}
			return
		}
		if rerr != nil {
			for _, err := range unjoin(rerr) {
				if _, ok := AsError(err); !ok {
					t.Fatalf("Resolve error %T %v is not an *Error", err, err)
				}
			}
			return
		}
		var buf bytes.Buffer
		if err := cfg.WriteYAML(&buf, []string{"fuzz"}); err != nil {
			t.Fatalf("WriteYAML of a resolved config: %v", err)
		}
		back, yerr, rerr := fuzzLoad(t, buf.Bytes())
		if yerr != nil || rerr != nil {
			t.Fatalf("reading back the written config: %v, %v\n%s", yerr, rerr, buf.Bytes())
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\n%s", back, cfg, buf.Bytes())
		}
	})
}

// unjoin lists the errors of an errors.Join (or err itself).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
