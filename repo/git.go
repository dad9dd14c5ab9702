package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
)

// gitCommand is the git binary Walk runs for DIR@REV (tests may point it elsewhere).
var gitCommand = "git"

// ErrNoGit is returned (wrapped) for DIR@REV when the git binary cannot be found.
var ErrNoGit = errors.New("the git binary is needed to read a repository at a revision (DIR@REV); install git or pass the directory without @REV")

// walkRev lists the files committed at rev in the repository dir: what was committed,
// so .gitignore plays no part, while the other filters do.
func walkRev(ctx context.Context, tree, dir, rev string, f *filter) ([]File, *Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := exec.LookPath(gitCommand); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", tree, ErrNoGit)
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, gitCommand, append([]string{"-C", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}
			return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return out, nil
	}
	commit, err := run("rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if _, err2 := run("rev-parse", "--git-dir"); err2 != nil {
			return nil, nil, fmt.Errorf("%s: %s is not a git repository: %w", tree, dir, err2)
		}
		return nil, nil, fmt.Errorf("%s: unknown revision %q in %s", tree, rev, dir)
	}
	sha := strings.TrimSpace(string(commit))
	// -l adds each blob's size, so files over the limit are skipped unread. Run in
	// dir, ls-tree lists what is below dir, relative to it (DIR may be a subdirectory
	// of the repository).
	list, err := run("ls-tree", "-r", "-z", "-l", sha)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", tree, err)
	}
	rep := &Report{}
	type want struct {
		path, sha string
	}
	var wanted []want
	for _, rec := range strings.Split(string(list), "\x00") {
		if rec == "" {
			continue
		}
		meta, p, ok := strings.Cut(rec, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 4 {
			return nil, nil, fmt.Errorf("%s: unexpected git ls-tree line %q", tree, rec)
		}
		mode, typ, obj, size := fields[0], fields[1], fields[2], fields[3]
		disp := joinName(tree, p)
		switch {
		case typ == "commit":
			rep.skip(disp+"/", ReasonSubmodule)
			continue
		case mode == "120000":
			rep.skip(disp, ReasonSymlink)
			continue
		case typ != "blob":
			rep.skip(disp, ReasonNotRegular)
			continue
		}
		if vendoredPath(f, p) {
			rep.skip(disp, ReasonVendored)
			continue
		}
		if why := f.byName(p); why != "" {
			rep.skip(disp, why)
			continue
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: git ls-tree size %q of %s: %w", tree, size, p, err)
		}
		if why := f.bySize(n); why != "" {
			rep.skip(disp, why)
			continue
		}
		wanted = append(wanted, want{p, obj})
	}
	if len(wanted) == 0 {
		return nil, rep, nil
	}
	// One git cat-file --batch reads every blob: "<sha>\n" in, "<sha> blob <size>\n<data>\n" out.
	cmd := exec.CommandContext(ctx, gitCommand, "-C", dir, "cat-file", "--batch")
	var in bytes.Buffer
	for _, w := range wanted {
		in.WriteString(w.sha + "\n")
	}
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%s: git cat-file: %w", tree, err)
	}
	br := bufio.NewReader(stdout)
	var files []File
	var readErr error
	for _, w := range wanted {
		hdr, err := br.ReadString('\n')
		if err != nil {
			readErr = fmt.Errorf("%s: git cat-file: reading %s: %w", tree, w.path, err)
			break
		}
		fs := strings.Fields(hdr)
		if len(fs) != 3 || fs[1] != "blob" {
			readErr = fmt.Errorf("%s: git cat-file: unexpected reply %q for %s", tree, strings.TrimSpace(hdr), w.path)
			break
		}
		n, err := strconv.Atoi(fs[2])
		if err != nil {
			readErr = fmt.Errorf("%s: git cat-file: size %q: %w", tree, fs[2], err)
			break
		}
		data := make([]byte, n+1) // the content and its trailing newline
		if _, err := io.ReadFull(br, data); err != nil {
			readErr = fmt.Errorf("%s: git cat-file: reading %s: %w", tree, w.path, err)
			break
		}
		data = data[:n]
		disp := joinName(tree, w.path)
		if why := f.byContent(w.path, data); why != "" {
			rep.skip(disp, why)
			continue
		}
		files = append(files, f.take(tree, w.path, data))
	}
	_, _ = io.Copy(io.Discard, br)
	if err := cmd.Wait(); err != nil && readErr == nil {
		readErr = fmt.Errorf("%s: git cat-file: %s", tree, strings.TrimSpace(stderr.String()+" "+err.Error()))
	}
	if readErr != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, readErr
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, fl := range files {
		rep.Taken = append(rep.Taken, fl.Name())
	}
	return files, rep, nil
}

// vendoredPath reports a path inside a vendored directory (a committed tree lists
// files, not directories).
func vendoredPath(f *filter, p string) bool {
	dir := path.Dir(p)
	if dir == "." {
		return false
	}
	for _, part := range strings.Split(dir, "/") {
		if f.vendoredDir(part) {
			return true
		}
	}
	return false
}
