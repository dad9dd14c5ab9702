// Package examples embeds the small example data set the quickstart trains on: a few
// dozen OpenSCAD, Blender Python and Rust rows written for bidora, in all the row kinds
// of docs/architecture.md (chat, instruction, prompt/completion, code).
package examples

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed data/train.jsonl data/val.jsonl
var files embed.FS

// Write copies train.jsonl and val.jsonl into dir and returns their paths.
func Write(dir string) (train, val string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("writing example data: %w", err)
	}
	for _, name := range []string{"train.jsonl", "val.jsonl"} {
		data, err := files.ReadFile("data/" + name)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", "", fmt.Errorf("writing example data: %w", err)
		}
	}
	return filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "val.jsonl"), nil
}
