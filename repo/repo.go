// Package repo turns a source tree into training documents: one document per file,
// as git sees the tree.
//
// Walk lists a directory as `git ls-files --cached --others --exclude-standard` would
// (the .gitignore files of the tree and of its parents up to the repository's top,
// with negations, directory patterns and "**", and .git/info/exclude; .git itself is
// never entered; files git tracks although a pattern matches them are asked of the git
// binary when it is installed; and the user's global excludes file, core.excludesFile),
// or reads a git repository at a revision straight from its objects
// (DIR@REV, through the git binary). Of what git lists it then skips, with a reason
// in the Report: symbolic links (git lists the link itself; its target is not this
// file's text), binary files (a NUL byte, or not UTF-8), vendored directories and
// build output (vendor/, node_modules/, target/, …), dependency lock files, files
// marked generated ("Code generated … DO NOT EDIT.", "@generated"), files over a size
// limit, and those the include/exclude globs or the language filter leave out.
//
// Dedupe removes exact duplicates (a hash of the text with line endings and trailing
// blanks normalised) and near duplicates (MinHash signatures of token 5-grams, LSH
// candidates checked against a Jaccard threshold). SplitFiles holds out whole files
// for validation, so the chunks of one file are never on both sides. Rows renders
// the files as dataset rows: a header naming the file (the Qwen2.5-Coder repository
// format when the tokenizer has its tokens, a comment line otherwise) and the text,
// cut at line boundaries with a small overlap when it is longer than a token budget.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Reason says why a file was not taken.
type Reason string

// The reasons a file is skipped.
const (
	ReasonIgnored       Reason = "gitignored"
	ReasonSymlink       Reason = "symlink"
	ReasonNestedRepo    Reason = "nested git repository"
	ReasonSubmodule     Reason = "submodule"
	ReasonVendored      Reason = "vendored"
	ReasonLockFile      Reason = "lock file"
	ReasonGenerated     Reason = "generated"
	ReasonBinary        Reason = "binary"
	ReasonTooLarge      Reason = "too large"
	ReasonEmpty         Reason = "empty"
	ReasonExcluded      Reason = "excluded"
	ReasonNotIncluded   Reason = "not included"
	ReasonLanguage      Reason = "other language"
	ReasonNotRegular    Reason = "not a regular file"
	ReasonUnreadable    Reason = "unreadable"
	ReasonExactDup      Reason = "exact duplicate"
	ReasonNearDuplicate Reason = "near duplicate"
)

// Options selects files.
type Options struct {
	// Include keeps only files whose path (relative to the tree) matches one of these
	// globs; Exclude drops files that match one. A glob without '/' matches the file
	// name at any depth, one with '/' the whole path; '*' stays within a directory,
	// "**" spans directories (as in .gitignore).
	Include, Exclude []string
	// Lang keeps only files of these languages (names or aliases from Languages).
	Lang []string
	// MaxFileBytes skips larger files (0 = no limit).
	MaxFileBytes int64
	// KeepVendored takes vendored directories, lock files and generated files too.
	KeepVendored bool
}

// File is one document taken from a tree.
type File struct {
	// Tree is the tree as given to Walk (a directory, or DIR@REV).
	Tree string
	// Path is slash-separated and relative to the tree.
	Path string
	// Text is the file's content (valid UTF-8).
	Text string
	// Lang is the language its extension names ("" when the table has none).
	Lang string
}

// Name is the file as reports show it: the tree joined with the path.
func (f File) Name() string { return joinName(f.Tree, f.Path) }

func joinName(tree, p string) string {
	if tree == "" || tree == "." {
		return p
	}
	return strings.TrimSuffix(filepath.ToSlash(tree), "/") + "/" + p
}

// Skip is a file (or a directory, with a trailing '/') that was not taken.
type Skip struct {
	Path   string `json:"path"`
	Reason Reason `json:"reason"`
	// Of names the kept file a duplicate duplicates.
	Of string `json:"of,omitempty"`
	// Similarity is a near duplicate's estimated Jaccard similarity to Of.
	Similarity float64 `json:"similarity,omitempty"`
}

// Report says what a walk (and Dedupe) took and skipped.
type Report struct {
	Taken   []string
	Skipped []Skip
}

func (r *Report) skip(name string, why Reason) {
	r.Skipped = append(r.Skipped, Skip{Path: name, Reason: why})
}

// Counts is the number of skipped entries per reason.
func (r *Report) Counts() map[Reason]int {
	c := map[Reason]int{}
	for _, s := range r.Skipped {
		c[s.Reason]++
	}
	return c
}

// Merge appends another report's entries.
func (r *Report) Merge(o *Report) {
	r.Taken = append(r.Taken, o.Taken...)
	r.Skipped = append(r.Skipped, o.Skipped...)
}

// filter holds the compiled Options.
type filter struct {
	opts     Options
	include  []Pattern
	exclude  []Pattern
	langs    map[string]bool
	maxBytes int64
	keepVenD bool
}

func newFilter(o Options) (*filter, error) {
	f := &filter{opts: o, maxBytes: o.MaxFileBytes, keepVenD: o.KeepVendored}
	var err error
	if f.langs, err = langSet(o.Lang); err != nil {
		return nil, err
	}
	compile := func(globs []string, what string) ([]Pattern, error) {
		var out []Pattern
		for _, g := range globs {
			p, ok := parseIgnoreLine(strings.TrimPrefix(g, "./"), "")
			if !ok || p.Negate {
				return nil, fmt.Errorf("%s glob %q: want a non-empty path pattern such as 'src/**/*.rs'", what, g)
			}
			out = append(out, p)
		}
		return out, nil
	}
	if f.include, err = compile(o.Include, "include"); err != nil {
		return nil, err
	}
	if f.exclude, err = compile(o.Exclude, "exclude"); err != nil {
		return nil, err
	}
	return f, nil
}

// byName checks what can be decided from a file's path alone ("" = take so far).
func (f *filter) byName(p string) Reason {
	base := path.Base(p)
	if !f.keepVenD && slices.Contains(lockFiles, base) {
		return ReasonLockFile
	}
	if slices.ContainsFunc(f.exclude, func(pt Pattern) bool { return pt.Match(p, false) }) {
		return ReasonExcluded
	}
	if len(f.include) > 0 && !slices.ContainsFunc(f.include, func(pt Pattern) bool { return pt.Match(p, false) }) {
		return ReasonNotIncluded
	}
	if f.langs != nil && !f.langs[strings.ToLower(path.Ext(p))] {
		return ReasonLanguage
	}
	return ""
}

// bySize checks a file's size.
func (f *filter) bySize(n int64) Reason {
	if f.maxBytes > 0 && n > f.maxBytes {
		return ReasonTooLarge
	}
	return ""
}

// byContent checks a file's content.
func (f *filter) byContent(p string, data []byte) Reason {
	if isBinary(data) {
		return ReasonBinary
	}
	if strings.TrimSpace(string(data)) == "" {
		return ReasonEmpty
	}
	if !f.keepVenD && isGenerated(path.Base(p), string(data)) {
		return ReasonGenerated
	}
	return ""
}

// vendoredDir reports a directory skipped whole.
func (f *filter) vendoredDir(name string) bool {
	return !f.keepVenD && slices.Contains(vendoredDirs, name)
}

func (f *filter) take(tree, p string, data []byte) File {
	fl := File{Tree: tree, Path: p, Text: string(data)}
	if l := languageOf(p); l != nil {
		fl.Lang = l.Name
	}
	return fl
}

// Walk lists the files of tree and reads those the options keep. tree is a
// directory, or DIR@REV: the git repository DIR at revision REV (a commit, branch or
// tag), read from its objects with the git binary. Files come in path order.
func Walk(ctx context.Context, tree string, opts Options) ([]File, *Report, error) {
	f, err := newFilter(opts)
	if err != nil {
		return nil, nil, err
	}
	if dir, rev, ok := splitRev(tree); ok {
		return walkRev(ctx, tree, dir, rev, f)
	}
	fi, err := os.Stat(tree)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", tree, err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s: not a directory", tree)
	}
	w := &walker{ctx: ctx, tree: tree, f: f, rep: &Report{}}
	ig, prefix, inRepo, err := parentIgnores(tree)
	if err != nil {
		return nil, nil, err
	}
	w.prefix = prefix
	if inRepo {
		w.tracked, w.trackedDirs = trackedIgnored(ctx, tree)
	}
	if err := w.dir("", ig, false); err != nil {
		return nil, nil, err
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].Path < w.files[j].Path })
	w.rep.Taken = w.rep.Taken[:0]
	for _, fl := range w.files {
		w.rep.Taken = append(w.rep.Taken, fl.Name())
	}
	return w.files, w.rep, nil
}

// splitRev splits DIR@REV; a path that exists as given is a directory, not a revision.
func splitRev(tree string) (dir, rev string, ok bool) {
	i := strings.LastIndexByte(tree, '@')
	if i <= 0 || i == len(tree)-1 {
		return "", "", false
	}
	if _, err := os.Stat(tree); err == nil {
		return "", "", false
	}
	return tree[:i], tree[i+1:], true
}

// parentIgnores finds the repository top above dir (a directory holding .git) and
// returns the patterns of the global excludes file, of .git/info/exclude and of the
// .gitignore files from the top down to dir's parent, and dir's path relative to the
// top ("" when dir is the top or no repository holds it).
func parentIgnores(dir string) (ig Ignore, prefix string, inRepo bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Ignore{}, "", false, err
	}
	ig = ig.With(globalExcludes(abs))
	top := ""
	for d := abs; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			top = d
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if top == "" {
		return ig, "", false, nil
	}
	if gitDir := resolveGitDir(top); gitDir != "" {
		if data, err := os.ReadFile(filepath.Join(gitDir, "info", "exclude")); err == nil {
			ig = ig.With(ParseIgnore(data, ""))
		}
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || rel == "." {
		return ig, "", true, nil
	}
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	for i := range parts {
		base := strings.Join(parts[:i], "/")
		data, err := os.ReadFile(filepath.Join(top, filepath.FromSlash(base), ".gitignore"))
		if err == nil {
			ig = ig.With(ParseIgnore(data, base))
		}
	}
	return ig, rel, true, nil
}

// maxIgnoreFile bounds the global excludes file read (a user's file, not the tree's).
const maxIgnoreFile = 1 << 20

// globalExcludes returns the patterns of the user's global excludes file, lowest in
// precedence, as git finds it: core.excludesFile as the git binary reports it for dir
// (when git is installed; it reads the global and repository config and expands ~),
// else git's default, $XDG_CONFIG_HOME/git/ignore or ~/.config/git/ignore. A missing
// or unreadable file gives none (git ignores it too); one over 1 MiB is not read.
func globalExcludes(dir string) []Pattern {
	path := ""
	if _, err := exec.LookPath(gitCommand); err == nil {
		if out, err := exec.Command(gitCommand, "-C", dir, "config", "--path", "core.excludesFile").Output(); err == nil {
			path = strings.TrimSpace(string(out))
		}
	}
	if path == "" {
		if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
			path = filepath.Join(x, "git", "ignore")
		} else if h, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(h, ".config", "git", "ignore")
		}
	}
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIgnoreFile+1))
	if err != nil || len(data) > maxIgnoreFile {
		return nil
	}
	return ParseIgnore(data, "")
}

// trackedIgnored asks git (when it is installed) for the tracked files below dir that
// an ignore pattern matches: git lists them all the same, so the walk takes them too.
// It returns them relative to dir, and the directories that hold them.
func trackedIgnored(ctx context.Context, dir string) (files, dirs map[string]bool) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := exec.LookPath(gitCommand); err != nil {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, gitCommand, "-C", dir, "ls-files", "-z", "--cached", "--ignored", "--exclude-standard").Output()
	if err != nil || len(out) == 0 {
		return nil, nil
	}
	files, dirs = map[string]bool{}, map[string]bool{}
	for _, p := range strings.Split(string(out), "\x00") {
		if p == "" {
			continue
		}
		files[p] = true
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	return files, dirs
}

// resolveGitDir is the git directory of the worktree top: .git itself, or where a
// .git file ("gitdir: …") points (its common directory for a linked worktree).
func resolveGitDir(top string) string {
	dotGit := filepath.Join(top, ".git")
	fi, err := os.Stat(dotGit)
	if err != nil {
		return ""
	}
	if fi.IsDir() {
		return dotGit
	}
	data, err := os.ReadFile(dotGit)
	if err != nil {
		return ""
	}
	gd, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return ""
	}
	gd = strings.TrimSpace(gd)
	if !filepath.IsAbs(gd) {
		gd = filepath.Join(top, gd)
	}
	if c, err := os.ReadFile(filepath.Join(gd, "commondir")); err == nil {
		cd := strings.TrimSpace(string(c))
		if !filepath.IsAbs(cd) {
			cd = filepath.Join(gd, cd)
		}
		return cd
	}
	return gd
}

type walker struct {
	ctx    context.Context
	tree   string
	prefix string // the tree's path relative to the repository top
	f      *filter
	rep    *Report
	files  []File
	// tracked are files git tracks although a pattern ignores them (relative to the
	// tree), trackedDirs the directories that hold them.
	tracked, trackedDirs map[string]bool
}

// top is p (relative to the tree) relative to the repository top, where the
// patterns' bases are.
func (w *walker) top(p string) string {
	if w.prefix == "" || p == "" {
		return w.prefix + p
	}
	return w.prefix + "/" + p
}

// dir walks the directory rel; inIgnored says an ignore pattern matched it (or a
// parent), so only tracked files below it are taken.
func (w *walker) dir(rel string, ig Ignore, inIgnored bool) error {
	if w.ctx != nil {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	abs := filepath.Join(w.tree, filepath.FromSlash(rel))
	if data, err := os.ReadFile(filepath.Join(abs, ".gitignore")); err == nil {
		ig = ig.With(ParseIgnore(data, w.top(rel)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", filepath.Join(abs, ".gitignore"), err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("reading %s: %w", abs, err)
		}
		// git warns and goes on ("could not open directory"); so does the walk.
		w.rep.skip(joinName(w.tree, rel)+"/", ReasonUnreadable)
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		disp := joinName(w.tree, p)
		typ := e.Type()
		if name == ".git" {
			continue
		}
		isDir := typ.IsDir()
		ignored := inIgnored
		if !ignored {
			ignored, _ = ig.Ignored(w.top(p), isDir)
		}
		if ignored {
			switch {
			case isDir && w.trackedDirs[p]:
				if err := w.dir(p, ig, true); err != nil {
					return err
				}
				continue
			case !isDir && w.tracked[p]: // tracked: git lists it
			default:
				if isDir {
					disp += "/"
				}
				w.rep.skip(disp, ReasonIgnored)
				continue
			}
		}
		switch {
		case typ&fs.ModeSymlink != 0:
			w.rep.skip(disp, ReasonSymlink)
		case isDir:
			if _, err := os.Lstat(filepath.Join(abs, name, ".git")); err == nil {
				w.rep.skip(disp+"/", ReasonNestedRepo)
				continue
			}
			if w.f.vendoredDir(name) {
				w.rep.skip(disp+"/", ReasonVendored)
				continue
			}
			if err := w.dir(p, ig, false); err != nil {
				return err
			}
		case !typ.IsRegular():
			w.rep.skip(disp, ReasonNotRegular)
		default:
			if err := w.file(p, disp, filepath.Join(abs, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) file(p, disp, abs string) error {
	if why := w.f.byName(p); why != "" {
		w.rep.skip(disp, why)
		return nil
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	if why := w.f.bySize(fi.Size()); why != "" {
		w.rep.skip(disp, why)
		return nil
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		w.rep.skip(disp, ReasonUnreadable) // git lists it, there is no text to take
		return nil
	}
	if why := w.f.byContent(p, data); why != "" {
		w.rep.skip(disp, why)
		return nil
	}
	w.files = append(w.files, w.f.take(w.tree, p, data))
	return nil
}
