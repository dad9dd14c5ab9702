package hub

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bidora/bidora/hub/hubtest"
	"github.com/bidora/bidora/internal/progress"
)

func init() { retryDelay = 10 * time.Millisecond }

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// tinyModel is a sharded model repo as the hub has them, with files bidora
// must skip (PyTorch weights, README, a subfolder).
func tinyModel() []hubtest.File {
	return []hubtest.File{
		{Name: "config.json", Data: []byte(`{"model_type":"llama"}`)},
		{Name: "tokenizer.json", Data: []byte(`{"model":{}}`)},
		{Name: "tokenizer_config.json", Data: []byte(`{}`)},
		{Name: "generation_config.json", Data: []byte(`{}`)},
		{Name: "model.safetensors.index.json", Data: []byte(`{"weight_map":{}}`)},
		{Name: "model-00001-of-00002.safetensors", Data: randBytes(1, 300_000), LFS: true},
		{Name: "model-00002-of-00002.safetensors", Data: randBytes(2, 200_001), LFS: true},
		{Name: "pytorch_model.bin", Data: randBytes(3, 50_000), LFS: true},
		{Name: "README.md", Data: []byte("# tiny")},
		{Name: "onnx/model.safetensors", Data: randBytes(4, 1000), LFS: true},
	}
}

func newClient(s *hubtest.Server, t *testing.T) *Client {
	return &Client{Endpoint: s.URL, CacheDir: filepath.Join(t.TempDir(), "hub"), Token: s.Token}
}

// checkSnapshot verifies the huggingface_hub layout for each wanted file.
func checkSnapshot(t *testing.T, c *Client, dir, repoID, commit string, files []hubtest.File, want func(string) bool) {
	t.Helper()
	repoDir := filepath.Join(c.CacheDir, "models--"+strings.ReplaceAll(repoID, "/", "--"))
	if wantDir := filepath.Join(repoDir, "snapshots", commit); dir != wantDir {
		t.Fatalf("snapshot dir = %s, want %s", dir, wantDir)
	}
	ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if err != nil || string(ref) != commit {
		t.Fatalf("refs/main = %q (%v), want %q", ref, err, commit)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !want(f.Name) {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s was downloaded but should be skipped", f.Name)
			}
			continue
		}
		link, err := os.Readlink(p)
		if err != nil {
			t.Errorf("%s is not a symlink: %v", f.Name, err)
			continue
		}
		etag := hubtest.GitBlobSHA1(f.Data)
		if f.LFS {
			etag = hubtest.SHA256(f.Data)
		}
		if wantLink := "../../blobs/" + etag; link != wantLink {
			t.Errorf("%s -> %s, want %s", f.Name, link, wantLink)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: content differs (%v)", f.Name, err)
		}
	}
	blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
	for _, b := range blobs {
		if strings.HasSuffix(b.Name(), ".incomplete") {
			t.Errorf("left a partial file %s", b.Name())
		}
	}
}

func TestSnapshotShardedModel(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	c := newClient(s, t)
	var log bytes.Buffer
	c.Progress = progress.New(&log, false)
	dir, err := c.Snapshot(context.Background(), Model, "org/tiny", "", ModelFiles)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, c, dir, "org/tiny", commit, files, ModelFiles)
	if !strings.Contains(log.String(), "org/tiny (7 files): 100% 500 kB/500 kB") {
		t.Errorf("progress log = %q", log.String())
	}
	for _, r := range s.Requests() {
		if r.Server == "cdn" && r.Authorization != "" {
			t.Errorf("token sent to the CDN: %+v", r)
		}
		if r.Server == "hub" && r.Authorization != "Bearer "+s.Token {
			t.Errorf("hub request without the token: %+v", r)
		}
		if strings.Contains(r.Path, "pytorch_model") || strings.Contains(r.Path, "README") {
			t.Errorf("requested a skipped file: %+v", r)
		}
	}
	// A second call finds everything cached: one listing request, no downloads.
	n := len(s.Requests())
	dir2, err := c.Snapshot(context.Background(), Model, "org/tiny", "main", ModelFiles)
	if err != nil || dir2 != dir {
		t.Fatalf("second snapshot: %s, %v", dir2, err)
	}
	if got := s.Requests()[n:]; len(got) != 1 || !strings.HasPrefix(got[0].Path, "/api/models/org/tiny/revision/main") {
		t.Errorf("second snapshot made requests %+v, want only the listing", got)
	}
}

func TestDownloadFile(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	c := newClient(s, t)
	ctx := context.Background()
	p, err := c.DownloadFile(ctx, Model, "org/tiny", "main", "model-00002-of-00002.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(c.CacheDir, "models--org--tiny", "snapshots", commit, "model-00002-of-00002.safetensors")
	if p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	// A file in a subfolder links with one more ../ per level.
	p, err = c.DownloadFile(ctx, Model, "org/tiny", commit, "onnx/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if link, _ := os.Readlink(p); link != "../../../blobs/"+hubtest.SHA256(files[9].Data) {
		t.Errorf("nested link = %s", link)
	}
	// With the commit as revision and the file cached, no request is made.
	n := len(s.Requests())
	if _, err := c.DownloadFile(ctx, Model, "org/tiny", commit, "onnx/model.safetensors"); err != nil {
		t.Fatal(err)
	}
	if len(s.Requests()) != n {
		t.Errorf("cached file by commit made a request")
	}
}

func TestResumeInterrupted(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	const name = "model-00001-of-00002.safetensors"
	sha := hubtest.SHA256(files[5].Data)

	// Without retries the call fails and keeps the part it got.
	s.CutAfter(name, 100_000, 1)
	c := newClient(s, t)
	c.Retries = -1
	_, err := c.Snapshot(context.Background(), Model, "org/tiny", "main", ModelFiles)
	if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("want a network error that says to resume, got %v", err)
	}
	partial := filepath.Join(c.CacheDir, "models--org--tiny", "blobs", sha+".incomplete")
	if fi, err := os.Stat(partial); err != nil || fi.Size() != 100_000 {
		t.Fatalf("partial file: %v %v", fi, err)
	}
	// The next call resumes with a Range request and completes.
	n := len(s.Requests())
	dir, err := c.Snapshot(context.Background(), Model, "org/tiny", "main", ModelFiles)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, c, dir, "org/tiny", commit, files, ModelFiles)
	ranged := false
	for _, r := range s.Requests()[n:] {
		if r.Server == "cdn" && r.Range == "bytes=100000-" {
			ranged = true
		}
	}
	if !ranged {
		t.Errorf("no Range request resumed the download: %+v", s.Requests()[n:])
	}

	// With retries, one call survives two cuts by resuming in place.
	s.CutAfter(name, 50_000, 1)
	c2 := newClient(s, t)
	if _, err := c2.DownloadFile(context.Background(), Model, "org/tiny", "main", name); err != nil {
		t.Fatalf("retrying download: %v", err)
	}
}

func TestStalledTransferResumed(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 200 * time.Millisecond
	s := hubtest.New(t)
	files := tinyModel()
	s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	const name = "model-00001-of-00002.safetensors"
	s.StallAfter(name, 64_000, 1)
	c := newClient(s, t)
	p, err := c.DownloadFile(context.Background(), Model, "org/tiny", "main", name)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, files[5].Data) {
		t.Fatal("content differs")
	}
	resumed := false
	for _, r := range s.Requests() {
		resumed = resumed || r.Range == "bytes=64000-"
	}
	if !resumed {
		t.Error("the stalled transfer was not resumed with a Range request")
	}
}

func TestCorruptBlobRefused(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	const name = "model-00002-of-00002.safetensors"
	s.Corrupt(name, 1)
	c := newClient(s, t)
	_, err := c.DownloadFile(context.Background(), Model, "org/tiny", "main", name)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("want ErrCorrupt naming sha256, got %v", err)
	}
	blobs := filepath.Join(c.CacheDir, "models--org--tiny", "blobs")
	entries, _ := os.ReadDir(blobs)
	for _, e := range entries {
		t.Errorf("corrupt download left %s", e.Name())
	}
	// A clean second try succeeds.
	p, err := c.DownloadFile(context.Background(), Model, "org/tiny", "main", name)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, files[6].Data) {
		t.Fatal("content differs after retry")
	}
}

func TestOfflineReusesCache(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	cache := filepath.Join(t.TempDir(), "hub")
	online := &Client{Endpoint: s.URL, CacheDir: cache}
	ctx := context.Background()
	dir, err := online.ResolveModel(ctx, "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	n := len(s.Requests())
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_ENDPOINT", s.URL)
	off := FromEnv()
	if !off.Offline {
		t.Fatal("HF_HUB_OFFLINE=1 not honoured")
	}
	got, err := off.ResolveModel(ctx, "org/tiny")
	if err != nil || got != dir {
		t.Fatalf("offline ResolveModel = %s, %v; want %s", got, err, dir)
	}
	if got, err := off.Snapshot(ctx, Model, "org/tiny", commit, nil); err != nil || got != dir {
		t.Fatalf("offline Snapshot by commit = %s, %v", got, err)
	}
	p, err := off.DownloadFile(ctx, Model, "org/tiny", "main", "config.json")
	if err != nil || p != filepath.Join(dir, "config.json") {
		t.Fatalf("offline DownloadFile = %s, %v", p, err)
	}
	names, err := off.ListFiles(ctx, Model, "org/tiny", "main")
	if err != nil || len(names) != 7 {
		t.Fatalf("offline ListFiles = %v, %v", names, err)
	}
	if len(s.Requests()) != n {
		t.Errorf("offline client made %d requests", len(s.Requests())-n)
	}
	for _, tc := range []struct{ what, file, repo string }{
		{"file", "pytorch_model.bin", "org/tiny"},
		{"repo", "config.json", "org/other"},
	} {
		_, err := off.DownloadFile(ctx, Model, tc.repo, "main", tc.file)
		if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
			t.Errorf("missing %s offline: want ErrNotCached mentioning HF_HUB_OFFLINE, got %v", tc.what, err)
		}
	}
	if _, err := off.ResolveModel(ctx, "org/other"); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline ResolveModel of an uncached repo: %v", err)
	}

	// Online but the hub is down: the cache answers too.
	dead := httptest.NewServer(nil)
	dead.Close()
	down := &Client{Endpoint: dead.URL, CacheDir: cache}
	if got, err := down.ResolveModel(ctx, "org/tiny"); err != nil || got != dir {
		t.Fatalf("hub down, cached: %s, %v", got, err)
	}
	_, err = down.ResolveModel(ctx, "org/other")
	if !errors.Is(err, ErrNotCached) || !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), dead.URL) {
		t.Fatalf("hub down, not cached: want ErrNotCached+ErrNetwork naming the URL, got %v", err)
	}
}

func TestConcurrentDownloaders(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	s.Throttle(2 * time.Millisecond) // make the two downloads overlap
	cache := filepath.Join(t.TempDir(), "hub")
	var wg sync.WaitGroup
	dirs := make([]string, 3)
	errs := make([]error, 3)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{Endpoint: s.URL, CacheDir: cache, Parallel: 2}
			dirs[i], errs[i] = c.Snapshot(context.Background(), Model, "org/tiny", "main", ModelFiles)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatalf("downloader %d: %v", i, errs[i])
		}
		checkSnapshot(t, &Client{CacheDir: cache}, dirs[i], "org/tiny", commit, files, ModelFiles)
	}
	gets := map[string]int{}
	for _, r := range s.Requests() {
		if r.Server == "cdn" && r.Method == "GET" {
			gets[r.Path[:strings.IndexByte(r.Path, '?')]]++
		}
	}
	for p, n := range gets {
		if n != 1 {
			t.Errorf("%s fetched %d times; the lock should make it once", p, n)
		}
	}
}

func TestRenamedRepoRedirect(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
	s.Rename("model", "org/tiny", "org/tiny-v2")
	c := newClient(s, t)
	p, err := c.DownloadFile(context.Background(), Model, "org/tiny", "main", "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(files[0].Data) {
		t.Fatalf("content %q", got)
	}
	if !strings.Contains(p, "models--org--tiny"+string(filepath.Separator)) {
		t.Errorf("cached under %s, want the requested id's folder (as huggingface_hub)", p)
	}
}

func TestHTTPErrors(t *testing.T) {
	s := hubtest.New(t)
	s.AddRepo(hubtest.Repo{ID: "org/open", Files: tinyModel()})
	s.AddRepo(hubtest.Repo{ID: "org/gated", Files: tinyModel(), Gated: true})
	s.AddRepo(hubtest.Repo{ID: "org/private", Files: tinyModel(), Private: true})
	dead := httptest.NewServer(nil)
	dead.Close()
	const badToken = "hf_WRONGtokenABCDEFG123"
	for _, tc := range []struct {
		name     string
		endpoint string
		token    string
		repo     string
		rev      string
		file     string // "" uses Snapshot
		kind     error
		says     []string
	}{
		{"invalid token", "", badToken, "org/open", "main", "config.json", ErrUnauthorized, []string{"401", "rejected", "HF_TOKEN"}},
		{"invalid token listing", "", badToken, "org/open", "main", "", ErrUnauthorized, []string{"401", "rejected"}},
		{"gated without token", "", "", "org/gated", "main", "config.json", ErrGated, []string{"gated", "set HF_TOKEN", "accept the licence", "/org/gated"}},
		{"gated not accepted", "", "TOKEN", "org/gated", "main", "", ErrGated, []string{"gated", "403", "accept the licence on " + s.URL + "/org/gated"}},
		{"private without token", "", "", "org/private", "main", "config.json", ErrRepoNotFound, []string{"org/private", "not found", "no token was sent"}},
		{"missing repo with token", "", "TOKEN", "org/nope", "main", "", ErrRepoNotFound, []string{"org/nope", "404", "not found"}},
		{"missing revision", "", "", "org/open", "v9", "config.json", ErrRevisionNotFound, []string{`revision "v9"`, "org/open"}},
		{"missing revision listing", "", "", "org/open", "v9", "", ErrRevisionNotFound, []string{`revision "v9"`}},
		{"missing file", "", "", "org/open", "main", "nope.json", ErrEntryNotFound, []string{`"nope.json"`, "org/open@main", "404"}},
		{"network", dead.URL, "TOKEN", "org/open", "main", "config.json", ErrNetwork, []string{dead.URL + "/org/open/resolve/main/config.json", "HF_HUB_OFFLINE"}},
		{"network listing", dead.URL, "TOKEN", "org/open", "main", "", ErrNetwork, []string{dead.URL + "/api/models/org/open/revision/main"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{Endpoint: s.URL, CacheDir: t.TempDir(), Token: tc.token}
			if tc.endpoint != "" {
				c.Endpoint = tc.endpoint
			}
			if tc.token == "TOKEN" {
				c.Token = s.Token
			}
			var err error
			if tc.file != "" {
				_, err = c.DownloadFile(context.Background(), Model, tc.repo, tc.rev, tc.file)
			} else {
				_, err = c.Snapshot(context.Background(), Model, tc.repo, tc.rev, ModelFiles)
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, tok := range []string{s.Token, badToken} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error text contains the token: %q", err)
				}
			}
		})
	}
}

func TestGatedGranted(t *testing.T) {
	s := hubtest.New(t)
	files := tinyModel()
	commit := s.AddRepo(hubtest.Repo{ID: "meta/gated", Files: files, Gated: true, Granted: true})
	c := newClient(s, t)
	dir, err := c.Snapshot(context.Background(), Model, "meta/gated", "main", ModelFiles)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, c, dir, "meta/gated", commit, files, ModelFiles)
}

func TestRedactToken(t *testing.T) {
	c := &Client{Token: "hf_secret"}
	inner := &Error{Kind: ErrHTTP, Msg: "server echoed hf_secret"}
	err := c.redact(inner)
	if strings.Contains(err.Error(), "hf_secret") || !errors.Is(err, ErrHTTP) {
		t.Fatalf("redact: %v", err)
	}
	if c.redact(nil) != nil {
		t.Fatal("redact(nil) != nil")
	}
}

func TestResolveModel(t *testing.T) {
	s := hubtest.New(t)
	s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: tinyModel()})
	binOnly := []hubtest.File{{Name: "config.json", Data: []byte("{}")}, {Name: "pytorch_model.bin", Data: []byte("x"), LFS: true}}
	s.AddRepo(hubtest.Repo{ID: "org/binonly", Files: binOnly})
	v2 := s.AddRepo(hubtest.Repo{ID: "org/tiny", Revision: "v2", Files: tinyModel()[4:6]})
	c := newClient(s, t)
	ctx := context.Background()
	local := t.TempDir()
	for _, tc := range []struct {
		ref     string
		wantDir string // suffix
		errs    string
	}{
		{ref: local, wantDir: local},
		{ref: "org/tiny", wantDir: "models--org--tiny/snapshots/"},
		{ref: "org/tiny@v2", wantDir: "models--org--tiny/snapshots/" + v2},
		{ref: "./no/such/dir", errs: `local path "./no/such/dir" does not exist`},
		{ref: "org/bad--id", errs: "neither an existing local path nor a hub repo id"},
		{ref: "org/binonly", errs: "no *.safetensors weights"},
		{ref: "org/missing", errs: `no local directory "org/missing"`},
		{ref: "", errs: "empty model reference"},
	} {
		dir, err := c.ResolveModel(ctx, tc.ref)
		if tc.errs != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errs) {
				t.Errorf("ResolveModel(%q) error %v, want %q", tc.ref, err, tc.errs)
			}
			continue
		}
		if err != nil {
			t.Errorf("ResolveModel(%q): %v", tc.ref, err)
			continue
		}
		if !strings.Contains(filepath.ToSlash(dir), tc.wantDir) {
			t.Errorf("ResolveModel(%q) = %s, want …%s", tc.ref, dir, tc.wantDir)
		}
	}
	// ResolveTokenizer fetches no weights.
	c2 := newClient(s, t)
	dir, err := c2.ResolveTokenizer(ctx, "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := walkSnapshot(dir)
	if strings.Join(names, ",") != "tokenizer.json,tokenizer_config.json" {
		t.Errorf("tokenizer snapshot has %v", names)
	}
}

func TestFromEnv(t *testing.T) {
	home, _ := os.UserHomeDir()
	tokDir := t.TempDir()
	os.WriteFile(filepath.Join(tokDir, "token"), []byte("hf_fromfile\n"), 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Client
	}{
		{"defaults", map[string]string{"HF_HOME": filepath.Join(tokDir, "none")},
			Client{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(tokDir, "none", "hub")}},
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x"},
			Client{Endpoint: DefaultEndpoint, CacheDir: "/x/huggingface/hub"}},
		{"home dir", map[string]string{},
			Client{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(home, ".cache", "huggingface", "hub")}},
		{"hub cache wins", map[string]string{"HF_HOME": "/h", "HF_HUB_CACHE": "/c", "HF_ENDPOINT": "http://mirror/", "HF_TOKEN": "hf_x", "HF_HUB_OFFLINE": "true"},
			Client{Endpoint: "http://mirror", CacheDir: "/c", Token: "hf_x", Offline: true}},
		{"legacy cache var", map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy", "TRANSFORMERS_OFFLINE": "1"},
			Client{Endpoint: DefaultEndpoint, CacheDir: "/legacy", Offline: true}},
		{"token file", map[string]string{"HF_HOME": tokDir},
			Client{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(tokDir, "hub"), Token: "hf_fromfile"}},
		{"offline no", map[string]string{"HF_HOME": "/h", "HF_HUB_OFFLINE": "0"},
			Client{Endpoint: DefaultEndpoint, CacheDir: "/h/hub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromEnv(func(k string) string { return tc.env[k] })
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestValidateRepoID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"Qwen/Qwen2.5-Coder-7B-Instruct", true}, {"gpt2", true}, {"meta-llama/Llama-3.2-1B", true},
		{"", false}, {"a/b/c", false}, {"org/na--me", false}, {"org/..", false}, {"org/-x", false},
		{"org/x.", false}, {"org name/x", false}, {strings.Repeat("a", 97), false},
	} {
		if err := ValidateRepoID(tc.id); (err == nil) != tc.ok {
			t.Errorf("ValidateRepoID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestModelFiles(t *testing.T) {
	for name, want := range map[string]bool{
		"config.json": true, "model.safetensors": true, "model-00001-of-00004.safetensors": true,
		"model.safetensors.index.json": true, "tokenizer.json": true, "chat_template.jinja": true,
		"adapter_config.json": true, "adapter_model.safetensors": true, "generation_config.json": true,
		"pytorch_model.bin": false, "model.gguf": false, "README.md": false, "onnx/model.safetensors": false,
		"original/consolidated.00.pth": false, "tokenizer.model": false,
	} {
		if got := ModelFiles(name); got != want {
			t.Errorf("ModelFiles(%q) = %v, want %v", name, got, want)
		}
	}
}
