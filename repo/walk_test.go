package repo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// git runs git in dir with a clean configuration (no global excludes file, fixed
// identity), failing the test on error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}

// writeTree writes files (path → content; a "->target" content makes a symlink).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gitView is what git lists: tracked files plus untracked ones not ignored.
func gitView(t *testing.T, dir string) []string {
	out := git(t, dir, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	var list []string
	for _, p := range strings.Split(out, "\x00") {
		if p != "" {
			list = append(list, p)
		}
	}
	sort.Strings(list)
	return list
}

// seen is what the walker saw as git does: taken files plus the files skipped for
// a reason other than being ignored (symlinks and binaries are in git's list).
func seen(t *testing.T, files []File, rep *Report) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	for _, s := range rep.Skipped {
		if s.Reason != ReasonIgnored {
			out = append(out, s.Path)
		}
	}
	sort.Strings(out)
	return out
}

func TestWalkMatchesGit(t *testing.T) {
	needGit(t)
	code := "fn main() {}\n"
	tests := []struct {
		name    string
		files   map[string]string
		exclude string // .git/info/exclude
		commit  []string
		want    map[string]Reason // skipped entries that must be reported
	}{
		{name: "plain", files: map[string]string{"a.rs": code, "src/b.rs": code, "README.md": "hi\n"}},
		{name: "nested ignore and negation", files: map[string]string{
			".gitignore": "*.log\nbuild/\n!keep.log\n",
			"a.log":      "x\n", "keep.log": "k\n", "build/out.rs": code, "src/x.rs": code,
			"src/.gitignore": "gen_*.rs\n!gen_keep.rs\n/local.rs\n",
			"src/gen_1.rs":   code, "src/gen_keep.rs": code, "src/local.rs": code, "src/deep/local.rs": code,
			"src/deep/keep.log": "k\n", "src/deep/.gitignore": "!*.log\n", "src/deep/other.log": "o\n",
		}, want: map[string]Reason{"a.log": ReasonIgnored, "build/": ReasonIgnored, "src/gen_1.rs": ReasonIgnored, "src/local.rs": ReasonIgnored}},
		{name: "double star and anchors", files: map[string]string{
			".gitignore": "**/tmp/**\n/top.txt\ndocs/**/*.txt\nfoo/**\n!foo/bar\na[0-9].c\n\\#hash\n",
			"tmp/a.rs":   code, "x/tmp/b.rs": code, "x/tmp": "", "top.txt": "t\n", "sub/top.txt": "t\n",
			"docs/a.txt": "d\n", "docs/x/y/b.txt": "d\n", "docs/keep.md": "m\n",
			"foo/bar/z.rs": code, "foo/baz.rs": code, "foo/bar": "", "a1.c": code, "ab.c": code, "#hash": "h\n",
		}},
		{name: "info exclude", exclude: "secret.rs\n", files: map[string]string{"secret.rs": code, "open.rs": code},
			want: map[string]Reason{"secret.rs": ReasonIgnored}},
		{name: "symlinks and binaries", files: map[string]string{
			"lib.rs": code, "link.rs": "->lib.rs", "dirlink": "->src", "src/a.rs": code,
			"blob.bin": "ab\x00cd", "latin1.txt": "caf\xe9\n",
		}, want: map[string]Reason{"link.rs": ReasonSymlink, "dirlink": ReasonSymlink, "blob.bin": ReasonBinary, "latin1.txt": ReasonBinary}},
		{name: "tracked files", files: map[string]string{".gitignore": "*.tmp\n", "a.rs": code, "b.rs": code, "c.tmp": "t\n"},
			commit: []string{"a.rs", ".gitignore"}, want: map[string]Reason{"c.tmp": ReasonIgnored}},
		// git lists a tracked file whatever the ignore patterns say, also in an ignored
		// directory (whose untracked files stay ignored).
		{name: "tracked but ignored", files: map[string]string{".gitignore": "*.tmp\nbuild/\n", "kept.tmp": "k\n", "other.tmp": "o\n",
			"build/sub/keep.rs": code, "build/sub/junk.rs": code, "build/x.rs": code},
			commit: []string{"kept.tmp", "build/sub/keep.rs"},
			want:   map[string]Reason{"other.tmp": ReasonIgnored, "build/sub/junk.rs": ReasonIgnored, "build/x.rs": ReasonIgnored}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			git(t, dir, "init", "-q")
			if strings.Contains(tc.name, "double") {
				// "x/tmp" and "foo/bar" above are placeholders for directories.
				delete(tc.files, "x/tmp")
				delete(tc.files, "foo/bar")
			}
			writeTree(t, dir, tc.files)
			if tc.exclude != "" {
				if err := os.WriteFile(filepath.Join(dir, ".git", "info", "exclude"), []byte(tc.exclude), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.commit) > 0 {
				git(t, dir, append([]string{"add", "-f", "--"}, tc.commit...)...)
				git(t, dir, "commit", "-q", "-m", "c")
			}
			files, rep, err := Walk(context.Background(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Paths in the report are joined with the tree; make them relative.
			for i := range rep.Skipped {
				rep.Skipped[i].Path = strings.TrimPrefix(rep.Skipped[i].Path, filepath.ToSlash(dir)+"/")
			}
			if got, want := seen(t, files, rep), gitView(t, dir); !slices.Equal(got, want) {
				t.Errorf("walker sees\n  %q\ngit lists\n  %q", got, want)
			}
			for p, why := range tc.want {
				if !slices.Contains(rep.Skipped, Skip{Path: p, Reason: why}) {
					t.Errorf("%s: want skipped as %q; skipped: %+v", p, why, rep.Skipped)
				}
			}
		})
	}
}

// A tree inside a repository obeys the .gitignore files above it and info/exclude.
func TestWalkSubdirectoryOfRepository(t *testing.T) {
	needGit(t)
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	writeTree(t, dir, map[string]string{
		".gitignore": "*.gen.rs\n/crate/skip.rs\n", "crate/.gitignore": "out/\n",
		"crate/a.rs": "fn a() {}\n", "crate/b.gen.rs": "x\n", "crate/skip.rs": "x\n", "crate/out/o.rs": "x\n",
	})
	files, rep, err := Walk(context.Background(), filepath.Join(dir, "crate"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	if want := []string{".gitignore", "a.rs"}; !slices.Equal(got, want) {
		t.Errorf("took %q, want %q (report %+v)", got, want, rep.Skipped)
	}
	if c := rep.Counts()[ReasonIgnored]; c != 3 {
		t.Errorf("%d ignored, want 3: %+v", c, rep.Skipped)
	}
}

func TestWalkFilters(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("let x = 1;\n", 200)
	writeTree(t, dir, map[string]string{
		"src/lib.rs":        "pub fn f() {}\n",
		"src/gen.rs":        "// @generated by build.rs\nfn g() {}\n",
		"zz.go":             "// Code generated by protoc-gen-go. DO NOT EDIT.\n\npackage x\n",
		"vendor/dep/x.go":   "package dep\n",
		"node_modules/m.js": "1\n",
		"target/debug/a.rs": "fn a() {}\n",
		"Cargo.lock":        "# lock\n",
		"big.rs":            big,
		"empty.rs":          "  \n\n",
		"tool.py":           "print(1)\n",
		"scad/part.scad":    "cube(1);\n",
		"tests/t.rs":        "#[test] fn t() {}\n",
		"assets/app.min.js": "var a=1;\n",
	})
	files, rep, err := Walk(context.Background(), dir, Options{MaxFileBytes: 1000, Exclude: []string{"tests/**"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	if want := []string{"scad/part.scad", "src/lib.rs", "tool.py"}; !slices.Equal(got, want) {
		t.Errorf("took %q, want %q", got, want)
	}
	rel := func(p string) string { return strings.TrimPrefix(p, filepath.ToSlash(dir)+"/") }
	why := map[string]Reason{}
	for _, s := range rep.Skipped {
		why[rel(s.Path)] = s.Reason
	}
	for p, w := range map[string]Reason{"src/gen.rs": ReasonGenerated, "zz.go": ReasonGenerated, "vendor/": ReasonVendored,
		"node_modules/": ReasonVendored, "target/": ReasonVendored, "Cargo.lock": ReasonLockFile, "big.rs": ReasonTooLarge,
		"empty.rs": ReasonEmpty, "tests/t.rs": ReasonExcluded, "assets/app.min.js": ReasonGenerated} {
		if why[p] != w {
			t.Errorf("%s: skipped as %q, want %q", p, why[p], w)
		}
	}
	if c := rep.Counts(); c[ReasonVendored] != 3 || c[ReasonGenerated] != 3 {
		t.Errorf("counts %v", c)
	}
	if len(rep.Taken) != 3 || rep.Taken[0] != filepath.ToSlash(dir)+"/scad/part.scad" {
		t.Errorf("Taken = %q", rep.Taken)
	}

	// --lang and --include.
	files, _, err = Walk(context.Background(), dir, Options{Lang: []string{"rust", "openscad"}, Include: []string{"src/**", "*.scad"}})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, f := range files {
		got = append(got, f.Path+":"+f.Lang)
	}
	if want := []string{"scad/part.scad:openscad", "src/lib.rs:rust"}; !slices.Equal(got, want) {
		t.Errorf("--lang/--include took %q, want %q", got, want)
	}
	if _, _, err := Walk(context.Background(), dir, Options{Lang: []string{"cobol"}}); err == nil || !strings.Contains(err.Error(), "cobol") {
		t.Errorf("unknown --lang: err = %v", err)
	}
	if _, _, err := Walk(context.Background(), filepath.Join(dir, "nope"), Options{}); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestWalkRevision(t *testing.T) {
	needGit(t)
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	writeTree(t, dir, map[string]string{"a.rs": "fn a() {}\n", "src/b.rs": "fn b() {}\n", "link.rs": "->a.rs",
		"bin.dat": "\x00\x01", ".gitignore": "*.rs\n", "vendor/v.rs": "fn v() {}\n"})
	git(t, dir, "add", "-f", "a.rs", "src/b.rs", "link.rs", "bin.dat", ".gitignore", "vendor/v.rs")
	git(t, dir, "commit", "-q", "-m", "one")
	git(t, dir, "tag", "v1")
	// The worktree changes after the tag: a dirty file and a new one.
	writeTree(t, dir, map[string]string{"c.rs": "fn c() {}\n"})
	if err := os.WriteFile(filepath.Join(dir, "a.rs"), []byte("fn dirty() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, rep, err := Walk(context.Background(), dir+"@v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+"="+f.Text)
	}
	// .gitignore plays no part in what was committed: a.rs and src/b.rs are taken.
	if want := []string{".gitignore=*.rs\n", "a.rs=fn a() {}\n", "src/b.rs=fn b() {}\n"}; !slices.Equal(got, want) {
		t.Errorf("took %q, want %q", got, want)
	}
	c := rep.Counts()
	if c[ReasonSymlink] != 1 || c[ReasonBinary] != 1 || c[ReasonVendored] != 1 {
		t.Errorf("counts %v (%+v)", c, rep.Skipped)
	}
	if files[1].Name() != dir+"@v1/a.rs" {
		t.Errorf("Name() = %q", files[1].Name())
	}
	// A subdirectory at a revision: what is below it, relative to it.
	files, _, err = Walk(context.Background(), filepath.Join(dir, "src")+"@v1", Options{})
	if err != nil || len(files) != 1 || files[0].Path != "b.rs" || files[0].Text != "fn b() {}\n" {
		t.Errorf("src@v1: %+v, %v", files, err)
	}
	if _, _, err := Walk(context.Background(), dir+"@nosuchrev", Options{}); err == nil || !strings.Contains(err.Error(), `unknown revision "nosuchrev"`) {
		t.Errorf("unknown revision: err = %v", err)
	}
	if _, _, err := Walk(context.Background(), t.TempDir()+"@HEAD", Options{}); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("not a repository: err = %v", err)
	}
	old := gitCommand
	gitCommand = "git-that-is-not-installed"
	defer func() { gitCommand = old }()
	if _, _, err := Walk(context.Background(), dir+"@v1", Options{}); !errors.Is(err, ErrNoGit) {
		t.Errorf("no git: err = %v", err)
	}
}

// TestGlobalExcludes checks the user's global excludes file: git's default location
// ($XDG_CONFIG_HOME/git/ignore) without git configuration, and core.excludesFile from
// the global git configuration (~ expanded by git) when git is installed, where the
// walk must equal git's own listing. Patterns are relative to the repository top.
func TestGlobalExcludes(t *testing.T) {
	home, xdg := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, ".gitconfig"))
	writeTree(t, xdg, map[string]string{"git/ignore": "*.swp\n/top-only.txt\n"})
	tree := t.TempDir()
	writeTree(t, tree, map[string]string{"a.rs": "fn a() {}\n", "b.swp": "x\n", "c.tmp": "x\n",
		"top-only.txt": "x\n", "sub/top-only.txt": "y\n"})
	walk := func() []string {
		files, _, err := Walk(context.Background(), tree, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Path)
		}
		return names
	}
	if got, want := walk(), []string{"a.rs", "c.tmp", "sub/top-only.txt"}; !slices.Equal(got, want) {
		t.Errorf("default global excludes: walk took %v, want %v", got, want)
	}

	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: core.excludesFile is not checked")
	}
	writeTree(t, home, map[string]string{".gitconfig": "[core]\n\texcludesFile = ~/my-ignore\n", "my-ignore": "*.tmp\n"})
	cmd := exec.Command("git", "-C", tree, "init", "-q")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	out, err := exec.Command("git", "-C", tree, "ls-files", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	gitList := strings.Fields(string(out))
	sort.Strings(gitList)
	if got, want := walk(), []string{"a.rs", "b.swp", "sub/top-only.txt", "top-only.txt"}; !slices.Equal(got, want) || !slices.Equal(got, gitList) {
		t.Errorf("core.excludesFile: walk took %v, want %v (git lists %v)", got, want, gitList)
	}
}
