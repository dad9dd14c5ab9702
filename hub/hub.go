// Package hub downloads model and dataset repositories from the Hugging Face
// Hub into the cache that Python's huggingface_hub uses, so that a model
// downloaded by either is reused by the other.
//
// Cache layout (identical to huggingface_hub):
//
//	$HF_HUB_CACHE (else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)
//	├── models--org--name/
//	│   ├── blobs/<etag>                     file contents, named by the hub's etag
//	│   │                                    (sha256 for LFS files, git sha1 otherwise)
//	│   ├── blobs/<etag>.incomplete          a partial download, resumed with Range
//	│   ├── refs/<revision>                  the commit a branch or tag pointed to
//	│   └── snapshots/<commit>/<file>        relative symlinks to ../../blobs/<etag>
//	├── datasets--org--name/                 the same for dataset repos
//	└── .locks/models--org--name/<etag>.lock flock'ed while a blob is written
//
// Environment (FromEnv): HF_ENDPOINT (default https://huggingface.co),
// HF_TOKEN (else the token file $HF_TOKEN_PATH or $HF_HOME/token that
// `huggingface-cli login` writes), HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE=1
// (resolve from refs/ and snapshots/ only; no network). The token is sent as
// "Authorization: Bearer" to the hub only (never to the CDN it redirects to)
// and never appears in logs or error text.
//
// Downloads: a HEAD on /{repo}/resolve/{revision}/{file} gives the commit
// (X-Repo-Commit), the etag (X-Linked-Etag for LFS files, else ETag) and the
// size (X-Linked-Size, else Content-Length); redirects are followed by hand
// so that the CDN location of LFS files is known and fetched without the
// token. A blob is written to blobs/<etag>.incomplete under a file lock,
// resumed with a Range request after an interruption, checked against its
// size and, for LFS files, its sha256 (a mismatch deletes it and fails), then
// renamed into place. Snapshot downloads several files in parallel.
//
// Entry points: ResolveModel (a local path, or "org/name[@revision]" whose
// config, tokenizer and safetensors files are fetched), ResolveTokenizer,
// Snapshot (any filter), DownloadFile, ListFiles / Info (the revisions API)
// and DatasetFiles (the parquet/jsonl files of a dataset split; see
// SelectSplit for the layouts understood). Package hubtest is a fake hub for
// tests.
package hub

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/bidora/bidora/internal/progress"
)

// DefaultEndpoint is the public hub.
const DefaultEndpoint = "https://huggingface.co"

// RepoType is the kind of a hub repository.
type RepoType string

// Repository kinds.
const (
	Model   RepoType = "model"
	Dataset RepoType = "dataset"
)

// Client talks to one hub endpoint and owns one cache directory. The zero
// value is not usable; build one with FromEnv or fill in at least CacheDir.
// A Client is safe for concurrent use.
type Client struct {
	// Endpoint is the hub base URL (default DefaultEndpoint).
	Endpoint string
	// Token is the access token sent as "Authorization: Bearer"; "" sends none.
	Token string
	// CacheDir is the hub cache root (the directory holding models--org--name).
	CacheDir string
	// Offline resolves files from the cache only and never uses the network.
	Offline bool
	// HTTP is the client used for requests (default http.DefaultClient's
	// transport). Its redirect policy is replaced: redirects are handled here.
	HTTP *http.Client
	// Progress, if not nil, shows download progress.
	Progress *progress.Reporter
	// Parallel bounds the number of files downloaded at once (default 4).
	Parallel int
	// Retries is how many times in a row an interrupted transfer is resumed
	// without receiving any byte before giving up (default 5; negative means
	// none). A transfer that received bytes starts the count again.
	Retries int
	// RetryBudget bounds the resumed transfers of one file within one call,
	// whether they made progress or not (default 50), so that a server that
	// keeps cutting bodies short ends the call with an error instead of being
	// asked forever. The part received stays in the cache for the next call.
	RetryBudget int
	// UserAgent is sent with each request (default "bidora").
	UserAgent string
}

// FromEnv builds a Client from the environment variables huggingface_hub
// reads (see the package documentation).
func FromEnv() *Client {
	return fromEnv(os.Getenv)
}

func fromEnv(getenv func(string) string) *Client {
	home := getenv("HF_HOME")
	if home == "" {
		cache := getenv("XDG_CACHE_HOME")
		if cache == "" {
			if h, err := os.UserHomeDir(); err == nil {
				cache = filepath.Join(h, ".cache")
			} else {
				cache = ".cache"
			}
		}
		home = filepath.Join(cache, "huggingface")
	}
	home = expandHome(home)
	cacheDir := getenv("HF_HUB_CACHE")
	if cacheDir == "" {
		cacheDir = getenv("HUGGINGFACE_HUB_CACHE") // legacy name, still honoured by huggingface_hub
	}
	if cacheDir == "" {
		cacheDir = filepath.Join(home, "hub")
	}
	endpoint := strings.TrimRight(getenv("HF_ENDPOINT"), "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	token := strings.TrimSpace(getenv("HF_TOKEN"))
	if token == "" {
		tokenPath := getenv("HF_TOKEN_PATH")
		if tokenPath == "" {
			tokenPath = filepath.Join(home, "token")
		}
		token = readTokenFile(expandHome(tokenPath))
	}
	return &Client{
		Endpoint: endpoint,
		Token:    token,
		CacheDir: expandHome(cacheDir),
		Offline:  isTrue(getenv("HF_HUB_OFFLINE")) || isTrue(getenv("TRANSFORMERS_OFFLINE")),
	}
}

// isTrue reads a boolean environment value the way huggingface_hub does.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[1:])
		}
	}
	return p
}

// readTokenFile returns the first line of the token file, or "".
func readTokenFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/")
}

func (c *Client) parallel() int {
	if c.Parallel <= 0 {
		return 4
	}
	return c.Parallel
}

func (c *Client) retries() int {
	switch {
	case c.Retries < 0:
		return 0
	case c.Retries == 0:
		return 5
	}
	return c.Retries
}

func (c *Client) retryBudget() int {
	if c.RetryBudget <= 0 {
		return 50
	}
	return c.RetryBudget
}

// RepoFolderName is the cache folder of a repository: "models--org--name" or
// "datasets--org--name".
func RepoFolderName(repoType RepoType, repoID string) string {
	return string(repoType) + "s--" + strings.ReplaceAll(repoID, "/", "--")
}

// RepoDir is the cache folder of a repository under CacheDir.
func (c *Client) RepoDir(repoType RepoType, repoID string) string {
	return filepath.Join(c.CacheDir, RepoFolderName(repoType, repoID))
}

var (
	repoIDRe     = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$`)
	commitHashRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Re     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidateRepoID checks a repository id: "name" or "org/name" made of
// letters, digits, '-', '_' and '.', without "--" or "..", not starting or
// ending with '-' or '.', at most 96 characters (the hub's own rules).
func ValidateRepoID(id string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid repo id %q: %s (expected org/name, e.g. Qwen/Qwen2.5-0.5B)", id, why)
	}
	switch {
	case id == "":
		return bad("empty")
	case len(id) > 96:
		return bad("longer than 96 characters")
	case !repoIDRe.MatchString(id):
		return bad("only letters, digits, '-', '_', '.' and one '/' are allowed")
	case strings.Contains(id, "--") || strings.Contains(id, ".."):
		return bad(`"--" and ".." are not allowed`)
	}
	for _, part := range strings.Split(id, "/") {
		if strings.HasPrefix(part, "-") || strings.HasPrefix(part, ".") ||
			strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".") {
			return bad("a part may not start or end with '-' or '.'")
		}
	}
	return nil
}

// validateFilename rejects names that would escape the snapshot folder.
func validateFilename(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return fmt.Errorf("invalid file name %q in repo: expected a relative path with '/' separators", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid file name %q in repo: empty, '.' or '..' path element", name)
		}
	}
	return nil
}

// validateRevision rejects revisions that would escape the refs folder.
func validateRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("empty revision")
	}
	if strings.Contains(rev, "\\") || strings.HasPrefix(rev, "/") {
		return fmt.Errorf("invalid revision %q", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid revision %q: empty, '.' or '..' path element", rev)
		}
	}
	return nil
}

func checkRepoType(t RepoType) error {
	if t != Model && t != Dataset {
		return fmt.Errorf("unsupported repo type %q (expected %q or %q)", t, Model, Dataset)
	}
	return nil
}
