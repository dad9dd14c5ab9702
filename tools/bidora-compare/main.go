// Command bidora-compare builds the small OpenSCAD data set of docs/bidora.md from
// Debian's openscad-testing-data (/usr/share/openscad): the .scad files of 500 to
// 3000 bytes, sorted by path, shuffled with a fixed seed, cut into a training set and a
// held-out test set, written as {"text": …} JSONL rows (train.jsonl, test.jsonl).
// compare.sh runs the comparison on them; BiDoRA carves its outer (magnitude) split out
// of train.jsonl itself (--outer-split, seeded by --seed).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	root := flag.String("root", "/usr/share/openscad", "where the .scad files are")
	out := flag.String("out", "data", "output directory")
	nTrain := flag.Int("train", 40, "training rows")
	nTest := flag.Int("test", 40, "held-out rows")
	seed := flag.Uint64("seed", 1, "shuffle seed")
	flag.Parse()
	if err := run(*root, *out, *nTrain, *nTest, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "bidora-compare:", err)
		os.Exit(1)
	}
}

func run(root, out string, nTrain, nTest int, seed uint64) error {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".scad") {
			return err
		}
		if info, err := d.Info(); err == nil && info.Size() >= 500 && info.Size() <= 3000 {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", root, err)
	}
	slices.Sort(files)
	if len(files) < nTrain+nTest {
		return fmt.Errorf("%s: %d usable .scad files, need %d (apt-get install openscad-testing-data)", root, len(files), nTrain+nTest)
	}
	rand.New(rand.NewPCG(seed, 0x5cad)).Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	write := func(name string, paths []string) error {
		f, err := os.Create(filepath.Join(out, name))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		for _, p := range paths {
			text, err := os.ReadFile(p)
			if err != nil {
				f.Close()
				return err
			}
			if err := enc.Encode(map[string]string{"text": string(text)}); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}
	train, test := files[:nTrain], files[nTrain:nTrain+nTest]
	for _, w := range []struct {
		name  string
		paths []string
	}{{"train.jsonl", train}, {"test.jsonl", test}} {
		if err := write(w.name, w.paths); err != nil {
			return err
		}
	}
	return nil
}
