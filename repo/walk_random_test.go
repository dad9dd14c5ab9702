package repo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Random trees and random .gitignore files (nested, with negations, anchors, directory
// patterns, "**", classes): the walker sees what git lists, case after case.
func TestWalkMatchesGitRandom(t *testing.T) {
	needGit(t)
	names := []string{"a", "b", "c.rs", "d.txt", "e", "f.rs"}
	pats := []string{"*.rs", "!c.rs", "a/", "/b", "**/e", "a/**", "!a/b", "b/*.txt", "[ab]", "?", "e/", "!/e",
		"**/a/**/c.rs", "d.*", "!d.txt", "*", "!*/", "a/b/", "/a/e/**", "!**/f.rs", "[!a-c]*", "b/**/d.txt", "*.txt/", "!b"}
	cases := 25
	if testing.Short() {
		cases = 10
	}
	for c := 0; c < cases; c++ {
		rng := rand.New(rand.NewPCG(uint64(c), 99))
		dir := t.TempDir()
		git(t, dir, "init", "-q")
		var dirs []string
		var mk func(rel string, depth int)
		mk = func(rel string, depth int) {
			dirs = append(dirs, rel)
			for _, n := range names {
				switch r := rng.IntN(4); {
				case r == 0 && depth < 3 && !strings.Contains(n, "."):
					mk(filepath.Join(rel, n), depth+1)
				case r <= 2:
					p := filepath.Join(dir, rel, n)
					_ = os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, []byte(n+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		mk("", 0)
		var desc []string
		for _, d := range dirs {
			if rng.IntN(3) != 0 {
				continue
			}
			var lines []string
			for k := rng.IntN(4) + 1; k > 0; k-- {
				lines = append(lines, pats[rng.IntN(len(pats))])
			}
			text := strings.Join(lines, "\n") + "\n"
			if err := os.WriteFile(filepath.Join(dir, d, ".gitignore"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			desc = append(desc, fmt.Sprintf("%s/.gitignore: %q", d, text))
		}
		// Some cases track a few files first, ignored or not: git lists those anyway.
		if c%3 == 0 {
			var all []string
			_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err == nil && !e.IsDir() && !strings.Contains(p, "/.git/") && rng.IntN(3) == 0 {
					rel, _ := filepath.Rel(dir, p)
					all = append(all, rel)
				}
				return nil
			})
			if len(all) > 0 {
				git(t, dir, append([]string{"add", "-f", "--"}, all...)...)
				desc = append(desc, fmt.Sprintf("tracked %q", all))
			}
		}
		files, rep, err := Walk(context.Background(), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rep.Skipped {
			rep.Skipped[i].Path = strings.TrimPrefix(rep.Skipped[i].Path, filepath.ToSlash(dir)+"/")
		}
		if got, want := seen(t, files, rep), gitView(t, dir); !slices.Equal(got, want) {
			t.Errorf("case %d (%s):\nwalker sees %q\ngit lists   %q", c, strings.Join(desc, "; "), got, want)
		}
	}
}
