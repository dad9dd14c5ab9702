package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bidora/bidora/internal/progress"
)

// fileMeta is what a HEAD on a resolve URL tells about one file.
type fileMeta struct {
	commit   string // X-Repo-Commit
	etag     string // normalised X-Linked-Etag or ETag: blob name in the cache
	size     int64  // X-Linked-Size or Content-Length
	location string // where to GET the bytes (the CDN for LFS files)
}

// resolveURL is {endpoint}/[datasets/]{repo}/resolve/{revision}/{file}, with
// the revision escaped as one path segment (refs/pr/1 -> refs%2Fpr%2F1).
func (c *Client) resolveURL(t target) string {
	var sb strings.Builder
	sb.WriteString(c.endpoint())
	sb.WriteByte('/')
	if t.repoType == Dataset {
		sb.WriteString("datasets/")
	}
	sb.WriteString(t.repoID)
	sb.WriteString("/resolve/")
	sb.WriteString(url.PathEscape(t.revision))
	for _, part := range strings.Split(t.file, "/") {
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(part))
	}
	return sb.String()
}

// defaultHTTP is used when Client.HTTP is nil: the default transport (which
// honours HTTPS_PROXY and friends) with a limit on waiting for response headers.
var defaultHTTP = func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: tr}
}()

func (c *Client) baseHTTP() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// noRedirect is the HTTP client with redirects returned to the caller.
func (c *Client) noRedirect() *http.Client {
	hc := *c.baseHTTP()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// sameHost reports whether u is on the hub endpoint's host and port, the
// only place the token is sent to.
func (c *Client) sameHost(u string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(c.endpoint())
	return err1 == nil && err2 == nil && strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: bad request URL %q: %w", u, err)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "bidora"
	}
	req.Header.Set("User-Agent", ua)
	if c.Token != "" && c.sameHost(u) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// normalizeEtag strips the weak marker and quotes: W/"abc" -> abc.
func normalizeEtag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// headFile asks the hub for a file's commit, etag, size and download location.
// Relative redirects (a renamed repository) are followed; an absolute one (the
// CDN, for LFS files) ends the walk and becomes the download location.
func (c *Client) headFile(ctx context.Context, t target) (fileMeta, error) {
	u := c.resolveURL(t)
	hc := c.noRedirect()
	for hops := 0; ; hops++ {
		if hops > 10 {
			return fileMeta{}, &Error{Kind: ErrHTTP, Msg: fmt.Sprintf("too many redirects resolving %s", u), URL: u}
		}
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return fileMeta{}, err
		}
		req.Header.Set("Accept-Encoding", "identity") // the real size, not a compressed one
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fileMeta{}, ctx.Err()
			}
			return fileMeta{}, networkError("HEAD", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fileMeta{}, c.statusError(resp, u, t)
		}
		loc := resp.Header.Get("Location")
		isRedirect := resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != ""
		if isRedirect {
			lu, err := url.Parse(loc)
			if err != nil {
				return fileMeta{}, &Error{Kind: ErrHTTP, Msg: fmt.Sprintf("bad redirect Location %q from %s", loc, u), URL: u}
			}
			if lu.Host == "" { // relative: a renamed repo; follow it and ask again
				base, _ := url.Parse(u)
				u = base.ResolveReference(lu).String()
				continue
			}
		}
		m := fileMeta{
			commit:   resp.Header.Get("X-Repo-Commit"),
			etag:     normalizeEtag(resp.Header.Get("X-Linked-Etag")),
			location: u,
		}
		if m.etag == "" {
			m.etag = normalizeEtag(resp.Header.Get("ETag"))
		}
		if isRedirect {
			m.location = loc
		}
		sizeHeader := resp.Header.Get("X-Linked-Size")
		if sizeHeader == "" && !isRedirect {
			sizeHeader = resp.Header.Get("Content-Length")
		}
		m.size = -1
		if n, err := strconv.ParseInt(sizeHeader, 10, 64); err == nil && n >= 0 {
			m.size = n
		}
		switch {
		case m.commit == "":
			return fileMeta{}, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("%s did not send X-Repo-Commit: %s does not look like a Hugging Face hub (check HF_ENDPOINT and any proxy)", u, c.endpoint())}
		case m.etag == "":
			return fileMeta{}, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("%s sent no ETag: cannot name the blob in the cache", u)}
		case m.size < 0:
			return fileMeta{}, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("%s sent no size (X-Linked-Size or Content-Length)", u)}
		case !validBlobName(m.etag):
			return fileMeta{}, &Error{Kind: ErrHTTP, URL: u, Msg: fmt.Sprintf("%s sent an unusable etag %q", u, m.etag)}
		}
		return m, nil
	}
}

func validBlobName(etag string) bool {
	return etag != "." && etag != ".." && !strings.ContainsAny(etag, `/\`) && len(etag) < 200
}

// cachedCommit maps a revision to a commit using the cache: a full commit
// hash is itself, a branch or tag is read from refs/<revision>.
func cachedCommit(repoDir, revision string) (string, bool) {
	if commitHashRe.MatchString(revision) {
		return revision, true
	}
	b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(revision)))
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(b))
	return commit, commit != ""
}

func pointerPath(repoDir, commit, file string) string {
	return filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(file))
}

// exists reports whether path (following symlinks) is there.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// DownloadFile returns the local path of one file of a repository at a
// revision (branch, tag or commit; "" means "main"), downloading it into the
// cache if needed. The path is the snapshot pointer
// snapshots/<commit>/<file>, a symlink into blobs/.
func (c *Client) DownloadFile(ctx context.Context, repoType RepoType, repoID, revision, filename string) (string, error) {
	p, err := c.downloadFile(ctx, target{repoType: repoType, repoID: repoID, revision: orMain(revision), file: filename}, nil)
	return p, c.redact(err)
}

func orMain(rev string) string {
	if rev == "" {
		return "main"
	}
	return rev
}

// downloadFile does DownloadFile; bar, if not nil, receives the bytes (a
// Snapshot's aggregate bar), else a bar of its own is started on c.Progress.
func (c *Client) downloadFile(ctx context.Context, t target, bar *progress.Bar) (string, error) {
	if err := checkRepoType(t.repoType); err != nil {
		return "", err
	}
	if err := ValidateRepoID(t.repoID); err != nil {
		return "", err
	}
	if err := validateRevision(t.revision); err != nil {
		return "", err
	}
	if err := validateFilename(t.file); err != nil {
		return "", err
	}
	if c.CacheDir == "" {
		return "", errors.New("hub: Client.CacheDir is empty (use hub.FromEnv)")
	}
	repoDir := c.RepoDir(t.repoType, t.repoID)

	// A commit hash whose file is already in the cache needs no request.
	if commitHashRe.MatchString(t.revision) {
		if p := pointerPath(repoDir, t.revision, t.file); exists(p) {
			return p, nil
		}
	}
	fromCache := func(cause error) (string, error) {
		if commit, ok := cachedCommit(repoDir, t.revision); ok {
			if p := pointerPath(repoDir, commit, t.file); exists(p) {
				return p, nil
			}
		}
		if c.Offline {
			return "", &Error{Kind: ErrNotCached, Msg: fmt.Sprintf("offline (HF_HUB_OFFLINE=1) and %q of %s is not in the cache %s; download it once with the network on", t.file, t, repoDir)}
		}
		// Access and not-found errors say more than "not cached".
		if errors.Is(cause, ErrUnauthorized) || errors.Is(cause, ErrGated) || errors.Is(cause, ErrRepoNotFound) || errors.Is(cause, ErrForbidden) {
			return "", cause
		}
		return "", &Error{Kind: ErrNotCached, Msg: fmt.Sprintf("cannot get %q of %s from the hub and it is not in the cache %s", t.file, t, repoDir), Err: cause}
	}
	if c.Offline {
		return fromCache(nil)
	}

	meta, err := c.headFile(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if shouldFallBack(err) {
			return fromCache(err)
		}
		return "", err
	}
	if !commitHashRe.MatchString(meta.commit) {
		return "", &Error{Kind: ErrHTTP, Msg: fmt.Sprintf("hub sent an invalid commit hash %q for %s", meta.commit, t)}
	}
	pointer := pointerPath(repoDir, meta.commit, t.file)
	if err := writeRef(repoDir, t.revision, meta.commit); err != nil {
		return "", err
	}
	if exists(pointer) {
		return pointer, nil
	}
	blob := filepath.Join(repoDir, "blobs", meta.etag)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return "", fmt.Errorf("hub: creating the cache folder: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return "", fmt.Errorf("hub: creating the cache folder: %w", err)
	}
	lockPath := filepath.Join(c.CacheDir, ".locks", RepoFolderName(t.repoType, t.repoID), meta.etag+".lock")
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !exists(blob) { // another process may have finished it while we waited
		own := bar == nil
		if own {
			bar = c.Progress.Start(t.file, meta.size, progress.Bytes)
		}
		err := c.fetchBlob(ctx, t, meta, blob, bar)
		if own {
			bar.Finish()
		}
		if err != nil {
			return "", err
		}
	} else {
		bar.Skip(meta.size)
	}
	if err := linkPointer(blob, pointer); err != nil {
		return "", err
	}
	return pointer, nil
}

// writeRef records that revision pointed to commit (refs/<revision>),
// atomically and only when it changed. A commit hash needs no ref.
func writeRef(repoDir, revision, commit string) error {
	if revision == commit {
		return nil
	}
	ref := filepath.Join(repoDir, "refs", filepath.FromSlash(revision))
	if b, err := os.ReadFile(ref); err == nil && string(b) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return fmt.Errorf("hub: creating %s: %w", filepath.Dir(ref), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(ref), filepath.Base(ref)+".*.tmp")
	if err != nil {
		return fmt.Errorf("hub: writing ref %s: %w", ref, err)
	}
	_, werr := tmp.WriteString(commit)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), ref)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("hub: writing ref %s: %w", ref, werr)
	}
	return nil
}

// linkPointer makes pointer a relative symlink to blob (../../blobs/<etag>,
// with one more ../ per folder level of the file name), replacing it atomically.
//
// Where symlinks are not allowed (Windows without Developer Mode or administrator
// rights), pointer becomes a hard link to blob instead, and where hard links fail
// too (FAT/exFAT, some network shares) a copy of it: huggingface_hub likewise falls
// back to real files in snapshots/ there. Readers see the same content either way.
func linkPointer(blob, pointer string) error {
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return fmt.Errorf("hub: linking %s: %w", pointer, err)
	}
	if cur, err := os.Readlink(pointer); err == nil && cur == rel {
		return nil
	}
	tmp := fmt.Sprintf("%s.%d.%d.tmp", pointer, os.Getpid(), time.Now().UnixNano())
	if serr := symlink(rel, tmp); serr != nil {
		if lerr := hardlink(blob, tmp); lerr != nil {
			if cerr := copyFile(blob, tmp); cerr != nil {
				os.Remove(tmp)
				return fmt.Errorf("hub: linking %s (no symlink: %v; no hard link: %v): copying the blob: %w", pointer, serr, lerr, cerr)
			}
		}
	}
	if err := os.Rename(tmp, pointer); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: linking %s: %w", pointer, err)
	}
	return nil
}

// symlink and hardlink are os.Symlink and os.Link; tests replace them to force the
// fallbacks of linkPointer.
var (
	symlink  = os.Symlink
	hardlink = os.Link
)

// copyFile copies src to a new file dst (synced, so a rename makes it whole).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// retryDelay is the pause before resuming an interrupted transfer;
// stallTimeout is how long a transfer may go without receiving a byte.
var (
	retryDelay   = 500 * time.Millisecond
	stallTimeout = 60 * time.Second
)

// fetchBlob downloads meta.location into blob+".incomplete" (resuming what is
// there with a Range request), checks size and, for LFS etags, sha256, then
// renames it to blob. The caller holds the blob's lock.
func (c *Client) fetchBlob(ctx context.Context, t target, meta fileMeta, blob string, bar *progress.Bar) error {
	incomplete := blob + ".incomplete"
	f, err := os.OpenFile(incomplete, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hub: opening %s: %w", incomplete, err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("hub: reading %s: %w", incomplete, err)
	}
	var h hash.Hash
	wantSHA := ""
	if sha256Re.MatchString(meta.etag) { // LFS: the etag is the content's sha256
		h = sha256.New()
		wantSHA = meta.etag
	}
	restart := func() error {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("hub: truncating %s: %w", incomplete, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("hub: rewinding %s: %w", incomplete, err)
		}
		bar.Skip(-have)
		have = 0
		if h != nil {
			h.Reset()
		}
		return nil
	}
	if have > meta.size {
		if err := restart(); err != nil {
			return err
		}
	}
	if have > 0 {
		if h != nil { // hash the part already on disk
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, have)); err != nil {
				return fmt.Errorf("hub: reading %s: %w", incomplete, err)
			}
		}
		bar.Skip(have)
	}

	retriesLeft := c.retries()
	budget, resumed := c.retryBudget(), 0
	for have < meta.size {
		got, err := c.fetchRange(ctx, t, meta, f, h, bar, &have, restart)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he *Error
		if errors.As(err, &he) && he.Kind != ErrNetwork {
			if he.Kind == ErrCorrupt {
				f.Close()
				os.Remove(incomplete)
			}
			return err // an HTTP status or a corrupt stream: retrying will not help
		}
		if got > 0 {
			retriesLeft = c.retries() // progress was made: start counting again
		}
		kept := fmt.Sprintf("%s of %s kept in %s; run again to resume", progress.FormatBytes(have), progress.FormatBytes(meta.size), incomplete)
		if retriesLeft <= 0 {
			return fmt.Errorf("%w (%s)", err, kept)
		}
		if resumed >= budget {
			return &Error{Kind: ErrNetwork, Err: err, URL: redactQuery(meta.location),
				Msg: fmt.Sprintf("giving up on %q of %s after %d resumed transfers (the retry budget: the server keeps breaking the download off; %s)", t.file, t, resumed, kept)}
		}
		retriesLeft--
		resumed++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryDelay):
		}
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
			f.Close()
			os.Remove(incomplete)
			return &Error{Kind: ErrCorrupt, Msg: fmt.Sprintf("%q of %s: sha256 of the downloaded bytes is %s, expected %s (the hub's etag); the corrupt download was deleted, run again to retry",
				t.file, t, got, wantSHA)}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("hub: writing %s: %w", incomplete, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hub: writing %s: %w", incomplete, err)
	}
	if err := os.Rename(incomplete, blob); err != nil {
		return fmt.Errorf("hub: moving %s into place: %w", incomplete, err)
	}
	return nil
}

// fetchRange issues one GET for the bytes from *have on and appends them to
// f. It returns how many bytes it added.
func (c *Client) fetchRange(ctx context.Context, t target, meta fileMeta, f *os.File, h hash.Hash, bar *progress.Bar, have *int64, restart func() error) (int64, error) {
	u := meta.location
	// A transfer that stalls for stallTimeout is cancelled and resumed.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	req, err := c.newRequest(rctx, http.MethodGet, u)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	if *have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", *have))
	}
	resp, err := c.baseHTTP().Do(req)
	if err != nil {
		return 0, networkError("GET", redactQuery(u), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && *have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != *have {
			if err := restart(); err != nil {
				return 0, err
			}
			return 0, &Error{Kind: ErrNetwork, Msg: fmt.Sprintf("GET %s answered Range bytes=%d- with Content-Range %q", redactQuery(u), *have, resp.Header.Get("Content-Range"))}
		}
	case resp.StatusCode == http.StatusOK:
		if *have > 0 { // the server ignored the Range: start again
			if err := restart(); err != nil {
				return 0, err
			}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if err := restart(); err != nil {
			return 0, err
		}
		return 0, &Error{Kind: ErrNetwork, Msg: fmt.Sprintf("GET %s: range bytes=%d- not satisfiable; restarting", redactQuery(u), *have)}
	default:
		if c.sameHost(u) {
			return 0, c.statusError(resp, u, t)
		}
		return 0, &Error{Kind: ErrHTTP, Status: resp.StatusCode, URL: redactQuery(u),
			Msg: fmt.Sprintf("GET %s returned %s for %q of %s", redactQuery(u), resp.Status, t.file, t)}
	}
	want := meta.size - *have
	w := io.Writer(f)
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	buf := make([]byte, 256<<10)
	var got int64
	for got < want {
		n, rerr := resp.Body.Read(buf[:min(int64(len(buf)), want-got)])
		if n > 0 {
			stall.Reset(stallTimeout)
			if _, err := w.Write(buf[:n]); err != nil {
				return got, fmt.Errorf("hub: writing %s: %w", f.Name(), err)
			}
			got += int64(n)
			*have += int64(n)
			bar.Add(int64(n))
		}
		if rerr == io.EOF {
			if got < want {
				return got, networkError("GET", redactQuery(u), fmt.Errorf("transfer ended after %d of %d bytes: %w", *have, meta.size, io.ErrUnexpectedEOF))
			}
			break
		}
		if rerr != nil {
			if ctx.Err() == nil && rctx.Err() != nil {
				rerr = fmt.Errorf("no data received for %s: %w", stallTimeout, rerr)
			}
			return got, networkError("GET", redactQuery(u), rerr)
		}
	}
	// More bytes than announced means the file is not what the hub described.
	if n, _ := resp.Body.Read(buf[:1]); n > 0 {
		return got, &Error{Kind: ErrCorrupt, Msg: fmt.Sprintf("%q of %s: the server sent more than the %d bytes the hub announced", t.file, t, meta.size)}
	}
	return got, nil
}

// contentRangeStart parses the first byte of "bytes 100-199/200".
func contentRangeStart(s string) (int64, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return 0, false
	}
	dash := strings.IndexByte(s, '-')
	if dash < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:dash], 10, 64)
	return n, err == nil
}

// redactQuery drops the query string (CDN signatures) from a URL for messages.
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
