package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/bidora/bidora/internal/progress"
)

// RepoFile is one file of a repository listing.
type RepoFile struct {
	Name   string   // path in the repo, '/'-separated ("rfilename")
	Size   int64    // bytes; -1 if the hub did not say
	BlobID string   // git object id
	LFS    *LFSInfo // nil for files stored in git itself
}

// LFSInfo describes a file stored with git LFS (weights, parquet files).
type LFSInfo struct {
	SHA256 string
	Size   int64
}

// RepoInfo is a repository at one revision.
type RepoInfo struct {
	ID      string
	Commit  string // the commit the revision resolved to
	Private bool
	Gated   bool // the repository requires accepting a licence
	Files   []RepoFile
}

// apiURL is {endpoint}/api/{models|datasets}/{repo}/revision/{revision}.
func (c *Client) apiURL(t target) string {
	return fmt.Sprintf("%s/api/%ss/%s/revision/%s?blobs=true", c.endpoint(), t.repoType, t.repoID, url.PathEscape(t.revision))
}

// Info lists a repository's files at a revision ("" means "main") with the
// revisions API (GET /api/models/{id}/revision/{rev}?blobs=true). It needs
// the network.
func (c *Client) Info(ctx context.Context, repoType RepoType, repoID, revision string) (*RepoInfo, error) {
	info, err := c.info(ctx, target{repoType: repoType, repoID: repoID, revision: orMain(revision)})
	return info, c.redact(err)
}

func (c *Client) info(ctx context.Context, t target) (*RepoInfo, error) {
	if err := checkRepoType(t.repoType); err != nil {
		return nil, err
	}
	if err := ValidateRepoID(t.repoID); err != nil {
		return nil, err
	}
	if err := validateRevision(t.revision); err != nil {
		return nil, err
	}
	if c.Offline {
		return nil, &Error{Kind: ErrNotCached, Msg: fmt.Sprintf("offline (HF_HUB_OFFLINE=1): cannot list %s on the hub", t)}
	}
	u := c.apiURL(t)
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.baseHTTP().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, networkError("GET", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, u, t)
	}
	var raw struct {
		ID       string          `json:"id"`
		SHA      string          `json:"sha"`
		Private  bool            `json:"private"`
		Gated    json.RawMessage `json:"gated"` // false, or "auto"/"manual"
		Siblings []struct {
			RFilename string `json:"rfilename"`
			Size      *int64 `json:"size"`
			BlobID    string `json:"blobId"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, networkError("GET", u, err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("GET %s: the answer is not the expected JSON", u), Err: err}
	}
	if !commitHashRe.MatchString(raw.SHA) {
		return nil, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("GET %s: no valid commit \"sha\" in the answer (got %q)", u, raw.SHA)}
	}
	info := &RepoInfo{ID: raw.ID, Commit: raw.SHA, Private: raw.Private}
	if g := strings.TrimSpace(string(raw.Gated)); g != "" && g != "false" && g != "null" {
		info.Gated = true
	}
	for _, s := range raw.Siblings {
		f := RepoFile{Name: s.RFilename, Size: -1, BlobID: s.BlobID}
		if s.Size != nil {
			f.Size = *s.Size
		}
		if s.LFS != nil {
			f.LFS = &LFSInfo{SHA256: s.LFS.SHA256, Size: s.LFS.Size}
			if f.Size < 0 {
				f.Size = s.LFS.Size
			}
		}
		info.Files = append(info.Files, f)
	}
	return info, nil
}

// ListFiles returns the names of a repository's files at a revision ("" means
// "main"), sorted. Offline it lists the cached snapshot of that revision,
// which holds only the files downloaded so far.
func (c *Client) ListFiles(ctx context.Context, repoType RepoType, repoID, revision string) ([]string, error) {
	names, _, err := c.listFiles(ctx, target{repoType: repoType, repoID: repoID, revision: orMain(revision)})
	return names, c.redact(err)
}

// listFiles returns the file names and, when online, the listing.
func (c *Client) listFiles(ctx context.Context, t target) ([]string, *RepoInfo, error) {
	if c.Offline {
		if err := ValidateRepoID(t.repoID); err != nil {
			return nil, nil, err
		}
		dir, err := c.cachedSnapshot(t, nil)
		if err != nil {
			return nil, nil, err
		}
		names, err := walkSnapshot(dir)
		return names, nil, err
	}
	info, err := c.info(ctx, t)
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, ErrNetwork) || errors.Is(err, ErrHTTP)) {
			// The hub is unreachable or failing: list the cached snapshot, if any.
			dir, cerr := c.cachedSnapshot(t, err)
			if cerr != nil {
				return nil, nil, cerr
			}
			names, werr := walkSnapshot(dir)
			return names, nil, werr
		}
		return nil, nil, err
	}
	names := make([]string, len(info.Files))
	for i, f := range info.Files {
		names[i] = f.Name
	}
	sort.Strings(names)
	return names, info, nil
}

// walkSnapshot lists the files of a snapshot folder as '/'-separated names.
func walkSnapshot(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: listing %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// cachedSnapshot is the snapshot folder of t.revision in the cache, or an
// ErrNotCached error (wrapping cause, if any).
func (c *Client) cachedSnapshot(t target, cause error) (string, error) {
	repoDir := c.RepoDir(t.repoType, t.repoID)
	if commit, ok := cachedCommit(repoDir, t.revision); ok {
		dir := filepath.Join(repoDir, "snapshots", commit)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
	}
	why := "offline (HF_HUB_OFFLINE=1) and"
	if !c.Offline {
		why = "cannot reach the hub and"
	}
	return "", &Error{Kind: ErrNotCached, Err: cause,
		Msg: fmt.Sprintf("%s %s is not in the cache %s (no refs/%s or snapshot); download it once with the network on", why, t, repoDir, t.revision)}
}

// Snapshot downloads the files of a repository at a revision ("" means
// "main") for which filter returns true (nil: all files) into the cache, up
// to Parallel at a time, and returns the snapshot folder
// snapshots/<commit>. Files already cached are not fetched again. Offline,
// or when the hub cannot be reached, it returns the cached snapshot of the
// revision if there is one.
func (c *Client) Snapshot(ctx context.Context, repoType RepoType, repoID, revision string, filter func(name string) bool) (string, error) {
	dir, _, err := c.snapshot(ctx, target{repoType: repoType, repoID: repoID, revision: orMain(revision)}, filter)
	return dir, c.redact(err)
}

func (c *Client) snapshot(ctx context.Context, t target, filter func(string) bool) (string, []string, error) {
	if err := checkRepoType(t.repoType); err != nil {
		return "", nil, err
	}
	if err := ValidateRepoID(t.repoID); err != nil {
		return "", nil, err
	}
	if err := validateRevision(t.revision); err != nil {
		return "", nil, err
	}
	if c.CacheDir == "" {
		return "", nil, errors.New("hub: Client.CacheDir is empty (use hub.FromEnv)")
	}
	fromCache := func(cause error) (string, []string, error) {
		dir, err := c.cachedSnapshot(t, cause)
		if err != nil {
			if cause != nil && !errors.Is(cause, ErrNetwork) && !errors.Is(cause, ErrHTTP) {
				return "", nil, cause // access and not-found errors say more
			}
			return "", nil, err
		}
		names, err := walkSnapshot(dir)
		if err != nil {
			return "", nil, err
		}
		var kept []string
		for _, n := range names {
			if filter == nil || filter(n) {
				kept = append(kept, n)
			}
		}
		return dir, kept, nil
	}
	if c.Offline {
		return fromCache(nil)
	}
	info, err := c.info(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		if errors.Is(err, ErrRevisionNotFound) {
			return "", nil, err
		}
		return fromCache(err)
	}
	repoDir := c.RepoDir(t.repoType, t.repoID)
	if err := writeRef(repoDir, t.revision, info.Commit); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(repoDir, "snapshots", info.Commit)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("hub: creating %s: %w", dir, err)
	}
	var want, todo []RepoFile
	var total int64
	for _, f := range info.Files {
		if err := validateFilename(f.Name); err != nil {
			return "", nil, fmt.Errorf("hub: listing of %s: %w", t, err)
		}
		if filter != nil && !filter(f.Name) {
			continue
		}
		want = append(want, f)
		if !exists(pointerPath(repoDir, info.Commit, f.Name)) {
			todo = append(todo, f)
			total += max(f.Size, 0)
		}
	}
	names := make([]string, len(want))
	for i, f := range want {
		names[i] = f.Name
	}
	sort.Strings(names)
	if len(todo) == 0 {
		return dir, names, nil
	}
	desc := t.repoID
	if len(todo) > 1 {
		desc = fmt.Sprintf("%s (%d files)", t.repoID, len(todo))
	}
	var bar *progress.Bar // one bar for all files; a single file gets its own
	if len(todo) > 1 {
		bar = c.Progress.Start(desc, total, progress.Bytes)
		defer bar.Finish()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.parallel())
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, f := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			ft := target{repoType: t.repoType, repoID: t.repoID, revision: info.Commit, file: f.Name}
			if _, err := c.downloadFile(ctx, ft, bar); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return "", nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	return dir, names, nil
}

// ModelFiles selects what bidora needs from a model or adapter repository:
// config.json, generation_config.json, the tokenizer files (tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, chat_template.jinja/.json),
// the safetensors weights (model.safetensors or the shards with
// model.safetensors.index.json) and adapter_config.json with
// adapter_model.safetensors. PyTorch *.bin/*.pt, GGUF, ONNX and files in
// subfolders are skipped.
func ModelFiles(name string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	switch name {
	case "config.json", "generation_config.json", "model.safetensors.index.json", "adapter_config.json":
		return true
	}
	return TokenizerFiles(name) || strings.HasSuffix(name, ".safetensors")
}

// TokenizerFiles selects the tokenizer and chat template files of a repository.
func TokenizerFiles(name string) bool {
	switch name {
	case "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json":
		return true
	}
	return false
}

// ParseRef splits "org/name@revision" into the repo id and revision ("" if none).
func ParseRef(ref string) (repoID, revision string) {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// looksLikePath reports whether ref can only be a local path.
func looksLikePath(ref string) bool {
	return strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~") ||
		strings.Contains(ref, `\`) || strings.Count(ref, "/") > 1 || filepath.IsAbs(ref)
}

// ResolveModel turns a model argument into a local path. An existing local
// file or directory is returned unchanged. Otherwise ref is a hub repo id,
// "org/name" or "org/name@revision": the files ModelFiles selects are
// downloaded into the cache (or found there offline) and the snapshot folder
// is returned. A repository with config.json but no safetensors weights is an
// error, since bidora reads only safetensors.
func (c *Client) ResolveModel(ctx context.Context, ref string) (string, error) {
	dir, names, err := c.resolve(ctx, ref, ModelFiles)
	if err != nil {
		return "", c.redact(err)
	}
	if names == nil { // a local path
		return dir, nil
	}
	has := map[string]bool{}
	weights := false
	for _, n := range names {
		has[n] = true
		weights = weights || strings.HasSuffix(n, ".safetensors")
	}
	if has["config.json"] && !weights && !has["adapter_config.json"] {
		return "", fmt.Errorf("hub: %s has config.json but no *.safetensors weights (PyTorch .bin only?); bidora reads safetensors only: pick a repo that has them, or convert it", ref)
	}
	return dir, nil
}

// ResolveTokenizer is ResolveModel for the tokenizer only: it downloads just
// the files TokenizerFiles selects, not the weights.
func (c *Client) ResolveTokenizer(ctx context.Context, ref string) (string, error) {
	dir, names, err := c.resolve(ctx, ref, TokenizerFiles)
	if err != nil {
		return "", c.redact(err)
	}
	if names != nil && !contains(names, "tokenizer.json") {
		return "", fmt.Errorf("hub: %s has no tokenizer.json (bidora reads only the HF tokenizers format)", ref)
	}
	return dir, nil
}

func contains(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// resolve returns a local path unchanged (names nil) or the snapshot folder
// of a repo id and the files it kept (names non-nil).
func (c *Client) resolve(ctx context.Context, ref string, filter func(string) bool) (string, []string, error) {
	if ref == "" {
		return "", nil, errors.New("hub: empty model reference (expected a local directory or a repo id such as Qwen/Qwen2.5-0.5B)")
	}
	if _, err := os.Stat(ref); err == nil {
		return ref, nil, nil
	}
	if looksLikePath(ref) {
		return "", nil, fmt.Errorf("hub: local path %q does not exist", ref)
	}
	id, rev := ParseRef(ref)
	if err := ValidateRepoID(id); err != nil {
		return "", nil, fmt.Errorf("hub: %q is neither an existing local path nor a hub repo id: %w", ref, err)
	}
	dir, names, err := c.snapshot(ctx, target{repoType: Model, repoID: id, revision: orMain(rev)}, filter)
	if err != nil {
		if errors.Is(err, ErrRepoNotFound) && strings.Contains(id, "/") {
			return "", nil, fmt.Errorf("%w (and there is no local directory %q)", err, ref)
		}
		return "", nil, err
	}
	if names == nil {
		names = []string{}
	}
	return dir, names, nil
}

// ResolveModel is FromEnv().ResolveModel(ctx, ref), without progress output.
// Commands should build a Client with FromEnv and set Progress instead.
func ResolveModel(ctx context.Context, ref string) (string, error) {
	return FromEnv().ResolveModel(ctx, ref)
}
