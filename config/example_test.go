package config_test

import (
	"fmt"
	"log"

	"github.com/bidora/bidora/config"
)

// Defaults < YAML file < command line: parse the flags, apply a YAML file for the
// settings the command line left alone, then resolve aliases and validate.
func Example() {
	cfg := &config.Train{}
	fs := config.NewFlagSet(cfg)
	if err := fs.Parse([]string{"--train-file", "data.jsonl", "--rank", "32", "--dora"}); err != nil {
		log.Fatal(err)
	}
	o := config.FlagOrigins(fs)
	yaml := "rank: 8          # the flag wins\nalpha: 64\nepochs: 2\n"
	if err := config.ApplyYAML(fs, []byte(yaml), "run.yaml", o); err != nil {
		log.Fatal(err)
	}
	if err := cfg.Resolve(o); err != nil {
		log.Fatal(err)
	}
	fmt.Println("method", cfg.Method, "rank", cfg.Rank, "alpha", cfg.Alpha, "epochs", cfg.Epochs)
	fmt.Println("rank from", o.Where("rank"), "| alpha from", o.Where("alpha"))

	// A bad value is an *Error naming where it came from.
	bad := &config.Train{}
	fs = config.NewFlagSet(bad)
	if err := fs.Parse([]string{"--train-file", "data.jsonl"}); err != nil {
		log.Fatal(err)
	}
	o = config.FlagOrigins(fs)
	err := config.ApplyYAML(fs, []byte("epochs: 1\nrank: -4\n"), "run.yaml", o)
	if err == nil {
		err = bad.Resolve(o)
	}
	if e, ok := config.AsError(err); ok {
		fmt.Println(e)
	}
	// Output:
	// method dora rank 32 alpha 64 epochs 2
	// rank from --rank | alpha from run.yaml:2: alpha
	// run.yaml:2: rank: -4: must be a positive integer
}
