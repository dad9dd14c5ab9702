package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bidora/bidora/repo"
)

func Example() {
	tmp, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "my-crate")
	write := func(p, s string) {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		_ = os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644)
	}
	write(".gitignore", "*.log\n")
	write("src/lib.rs", "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n")
	write("src/copy.rs", "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n")
	write("build.log", "noise\n")
	write("Cargo.lock", "# lock\n")

	files, rep, err := repo.Walk(context.Background(), dir, repo.Options{Lang: []string{"rust"}, MaxFileBytes: 1 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	files, dups := repo.Dedupe(files, 0.85)
	rep.Skipped = append(rep.Skipped, dups...)
	for _, s := range rep.Skipped {
		fmt.Printf("skipped %s: %s\n", strings.TrimPrefix(s.Path, dir+"/"), s.Reason)
	}
	rows := repo.Rows(files, repo.RowOptions{Format: repo.FormatQwenRepo})
	for _, r := range rows {
		fmt.Printf("%q + %d bytes\n", r.Header, len(r.Text))
	}
	// Output:
	// skipped .gitignore: other language
	// skipped Cargo.lock: lock file
	// skipped build.log: gitignored
	// skipped src/lib.rs: exact duplicate
	// "<|repo_name|>my-crate\n<|file_sep|>src/copy.rs\n" + 48 bytes
}
