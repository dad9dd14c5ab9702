// Package hubtest runs a fake Hugging Face hub on loopback for tests: any
// package that downloads through package hub can serve it the repositories
// and faults it needs, without the network.
//
// It answers the way the real hub does, as far as huggingface_hub and package
// hub rely on it:
//
//   - HEAD and GET /{repo}/resolve/{revision}/{file} (and /datasets/{repo}/…):
//     X-Repo-Commit; for files kept in git, 200 with ETag "<git blob sha1>"
//     and Content-Length; for LFS files, 302 to a CDN server (a second
//     loopback server, so a different host) with X-Linked-Etag "<sha256>",
//     X-Linked-Size and the ETag of the pointer file.
//   - Range requests on file bytes (206 with Content-Range, 416 past the end).
//   - GET /api/{models|datasets}/{repo}/revision/{revision}[?blobs=true]:
//     sha and siblings (with size, blobId and lfs when blobs=true).
//   - Access: a wrong token is 401 "Invalid credentials in Authorization
//     header"; private repos without the token are 401 RepoNotFound; gated
//     repos are 401 GatedRepo without the token and 403 GatedRepo with it
//     until the licence is granted; unknown repos, revisions and files are
//     404 with X-Error-Code RepoNotFound, RevisionNotFound or EntryNotFound.
//   - Renamed repositories answer with a relative 307 redirect.
//
// Faults for tests: CutAfter breaks a transfer after some bytes (to test
// resuming), CutEvery breaks every transfer short (to test the retry budget), StallAfter hangs one (to test stall detection), Corrupt serves wrong bytes under the right etag (to test the
// sha256 check), Throttle slows transfers (to make downloads overlap).
// Requests lists every request the two servers received.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// File is one file of a repository.
type File struct {
	Name string // path in the repo, '/'-separated
	Data []byte
	LFS  bool // stored with git LFS: served from the CDN, etag = sha256
}

// Repo is a repository, or one more revision of it.
type Repo struct {
	Type     string // "model" (default) or "dataset"
	ID       string // "org/name"
	Revision string // branch or tag the files are committed to (default "main")
	Files    []File
	Private  bool // visible only with the server's token
	Gated    bool // needs the token, and Granted
	Granted  bool // the token's owner has accepted the gated licence
}

// Request is one request a server received.
type Request struct {
	Server        string // "hub" or "cdn"
	Method        string
	Path          string // escaped path and query
	Range         string // the Range header
	Authorization string // the Authorization header
}

type repoState struct {
	typ      string
	id       string
	private  bool
	gated    bool
	granted  bool
	branches map[string]string          // revision -> commit
	commits  map[string]map[string]File // commit -> name -> file
}

type fault struct {
	cutAt   int64 // break (or stall) the transfer at this file offset
	times   int   // how many more transfers it applies to
	corrupt bool
	stall   bool // at cutAt, stop sending but keep the connection open
	every   bool // cutAt counts from the start of each transfer, not of the file
}

// Server is a fake hub and its CDN.
type Server struct {
	URL   string // the hub endpoint, for HF_ENDPOINT or hub.Client.Endpoint
	CDN   string // the CDN base URL LFS files redirect to
	Token string // the only valid access token (default "hf_test_token")

	hub, cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string]*repoState // "model:org/name"
	renames  map[string]string     // "model:old/id" -> "new/id"
	blobs    map[string][]byte     // sha256 -> bytes (CDN)
	names    map[string]string     // sha256 -> a file name (for faults)
	faults   map[string]*fault     // file name -> fault
	throttle time.Duration
	log      []Request
}

// New starts a fake hub; it is closed when the test ends.
func New(tb testing.TB) *Server {
	s := NewServer()
	tb.Cleanup(s.Close)
	return s
}

// NewServer starts a fake hub; the caller must Close it.
func NewServer() *Server {
	s := &Server{
		Token:   "hf_test_token",
		repos:   map[string]*repoState{},
		renames: map[string]string{},
		blobs:   map[string][]byte{},
		names:   map[string]string{},
		faults:  map[string]*fault{},
	}
	s.hub = httptest.NewServer(http.HandlerFunc(s.serveHub))
	s.cdn = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	s.URL, s.CDN = s.hub.URL, s.cdn.URL
	return s
}

// Close stops both servers.
func (s *Server) Close() {
	s.hub.Close()
	s.cdn.Close()
}

// GitBlobSHA1 is the git object id of data: the ETag of a non-LFS file.
func GitBlobSHA1(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256 is the hex sha256 of data: the etag of an LFS file.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func lfsPointer(data []byte) []byte {
	return fmt.Appendf(nil, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", SHA256(data), len(data))
}

func key(typ, id string) string { return typ + ":" + id }

// AddRepo adds a repository (or a new revision of one) and returns the commit
// hash its revision now points to.
func (s *Server) AddRepo(r Repo) string {
	if r.Type == "" {
		r.Type = "model"
	}
	if r.Revision == "" {
		r.Revision = "main"
	}
	files := map[string]File{}
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.Type, r.ID, r.Revision)
	sorted := append([]File(nil), r.Files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, f := range sorted {
		files[f.Name] = f
		fmt.Fprintf(h, "%s\x00%d\x00%v\x00", f.Name, len(f.Data), f.LFS)
		h.Write(f.Data)
	}
	commit := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.repos[key(r.Type, r.ID)]
	if st == nil {
		st = &repoState{typ: r.Type, id: r.ID, branches: map[string]string{}, commits: map[string]map[string]File{}}
		s.repos[key(r.Type, r.ID)] = st
	}
	st.private, st.gated, st.granted = r.Private, r.Gated, r.Granted
	st.branches[r.Revision] = commit
	st.commits[commit] = files
	for _, f := range r.Files {
		if f.LFS {
			sha := SHA256(f.Data)
			s.blobs[sha], s.names[sha] = f.Data, f.Name
		}
	}
	return commit
}

// Rename makes the repository answer under newID; oldID redirects to it.
func (s *Server) Rename(typ, oldID, newID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if typ == "" {
		typ = "model"
	}
	if st := s.repos[key(typ, oldID)]; st != nil {
		delete(s.repos, key(typ, oldID))
		st.id = newID
		s.repos[key(typ, newID)] = st
	}
	s.renames[key(typ, oldID)] = newID
}

// CutAfter makes the next `times` transfers of file `name` (in any repo)
// that reach byte offset n stop there: the connection is closed mid-body.
func (s *Server) CutAfter(name string, n int64, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = &fault{cutAt: n, times: times}
}

// CutEvery makes the next `times` transfers of file `name` send at most n
// bytes each and then close the connection mid-body: a server that keeps
// cutting bodies short, however often it is resumed.
func (s *Server) CutEvery(name string, n int64, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = &fault{cutAt: n, times: times, every: true}
}

// StallAfter makes the next `times` transfers of file `name` that reach byte
// offset n stop sending there and hang until the client gives up.
func (s *Server) StallAfter(name string, n int64, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = &fault{cutAt: n, times: times, stall: true}
}

// Corrupt makes the next `times` transfers of file `name` send bytes that
// differ from the file (the etag and size stay those of the real file).
func (s *Server) Corrupt(name string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = &fault{corrupt: true, times: times}
}

// Throttle pauses d after every 16 KiB sent.
func (s *Server) Throttle(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = d
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

func (s *Server) record(server string, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	s.log = append(s.log, Request{Server: server, Method: r.Method, Path: p, Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization")})
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// access checks the token against the repo; it writes the error and returns
// false when access is refused. st may be nil (unknown repo).
func (s *Server) access(w http.ResponseWriter, r *http.Request, st *repoState, typ, id string) bool {
	auth := r.Header.Get("Authorization")
	authed := false
	if auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); !ok || tok != s.Token || s.Token == "" {
			hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
			return false
		}
		authed = true
	}
	switch {
	case st == nil || (st.private && !authed):
		status := http.StatusNotFound
		if !authed {
			status = http.StatusUnauthorized // the hub does not tell anonymous callers whether a repo exists
		}
		hubError(w, status, "RepoNotFound", "Repository not found")
		return false
	case st.gated && !authed:
		hubError(w, http.StatusUnauthorized, "GatedRepo", fmt.Sprintf("Access to %s %s is restricted. You must have access to it and be authenticated to access it. Please log in.", typ, id))
		return false
	case st.gated && !st.granted:
		hubError(w, http.StatusForbidden, "GatedRepo", fmt.Sprintf("Access to %s %s is restricted and you are not in the authorized list. Visit %s/%s to ask for access.", typ, id, s.URL, id))
		return false
	}
	return true
}

// commitFor resolves a revision (branch, tag or full commit hash).
func (st *repoState) commitFor(rev string) (string, bool) {
	if c, ok := st.branches[rev]; ok {
		return c, true
	}
	if _, ok := st.commits[rev]; ok {
		return rev, true
	}
	return "", false
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	s.record("hub", r)
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) > 0 && segs[0] == "api" {
		s.serveAPI(w, r, segs[1:])
		return
	}
	typ := "model"
	if len(segs) > 0 && segs[0] == "datasets" {
		typ, segs = "dataset", segs[1:]
	}
	i := indexOf(segs, "resolve")
	if i < 1 || i > 2 || len(segs) < i+3 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	id := strings.Join(segs[:i], "/")
	rev, err1 := url.PathUnescape(segs[i+1])
	file, err2 := url.PathUnescape(strings.Join(segs[i+2:], "/"))
	if err1 != nil || err2 != nil {
		http.Error(w, "bad escape", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	st := s.repos[key(typ, id)]
	newID, renamed := s.renames[key(typ, id)]
	s.mu.Unlock()
	if st == nil && renamed {
		prefix := "/"
		if typ == "dataset" {
			prefix = "/datasets/"
		}
		w.Header().Set("Location", prefix+newID+"/"+strings.Join(segs[i:], "/"))
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if !s.access(w, r, st, typ, id) {
		return
	}
	commit, ok := st.commitFor(rev)
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	f, ok := st.commits[commit][file]
	if !ok {
		hubError(w, http.StatusNotFound, "EntryNotFound", fmt.Sprintf("%s does not exist on %q", file, rev))
		return
	}
	if f.LFS {
		sha := SHA256(f.Data)
		w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.Data)))
		w.Header().Set("ETag", `"`+GitBlobSHA1(lfsPointer(f.Data))+`"`)
		w.Header().Set("Location", fmt.Sprintf("%s/repos/%s/%s/%s?X-Amz-Signature=fake&response-content-disposition=attachment", s.CDN, sha[:2], sha[2:4], sha))
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitBlobSHA1(f.Data)+`"`)
	s.serveBytes(w, r, f.Name, f.Data)
}

func indexOf(segs []string, s string) int {
	for i, x := range segs {
		if x == s {
			return i
		}
	}
	return -1
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, segs []string) {
	if len(segs) < 1 || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	var typ string
	switch segs[0] {
	case "models":
		typ = "model"
	case "datasets":
		typ = "dataset"
	default:
		http.NotFound(w, r)
		return
	}
	segs = segs[1:]
	i := indexOf(segs, "revision")
	id, rev := strings.Join(segs, "/"), "main"
	if i >= 0 {
		if i < 1 || i > 2 || len(segs) != i+2 {
			http.NotFound(w, r)
			return
		}
		var err error
		id = strings.Join(segs[:i], "/")
		if rev, err = url.PathUnescape(segs[i+1]); err != nil {
			http.Error(w, "bad escape", http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	st := s.repos[key(typ, id)]
	s.mu.Unlock()
	if !s.access(w, r, st, typ, id) {
		return
	}
	commit, ok := st.commitFor(rev)
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	blobs := r.URL.Query().Get("blobs") == "true" || r.URL.Query().Get("blobs") == "True"
	var siblings []map[string]any
	names := make([]string, 0, len(st.commits[commit]))
	for n := range st.commits[commit] {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := st.commits[commit][n]
		sib := map[string]any{"rfilename": n}
		if blobs {
			sib["size"] = len(f.Data)
			if f.LFS {
				p := lfsPointer(f.Data)
				sib["blobId"] = GitBlobSHA1(p)
				sib["lfs"] = map[string]any{"sha256": SHA256(f.Data), "size": len(f.Data), "pointerSize": len(p)}
			} else {
				sib["blobId"] = GitBlobSHA1(f.Data)
			}
		}
		siblings = append(siblings, sib)
	}
	var gated any = false
	if st.gated {
		gated = "manual"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"_id": commit[:24], "id": id, "sha": commit, "private": st.private, "gated": gated,
		"disabled": false, "siblings": siblings,
	})
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.record("cdn", r)
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(segs) != 4 || segs[0] != "repos" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	data, ok := s.blobs[segs[3]]
	name := s.names[segs[3]]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	w.Header().Set("ETag", `"`+segs[3]+`"`)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename*=UTF-8''%s; filename="%s";`, name, name))
	s.serveBytes(w, r, name, data)
}

// serveBytes answers a GET or HEAD for data, honouring Range and the
// faults registered for name.
func (s *Server) serveBytes(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	size := int64(len(data))
	start, end := int64(0), size-1
	ranged := false
	if rg := r.Header.Get("Range"); rg != "" {
		a, b, ok := parseRange(rg, size)
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, end, ranged = a, b, true
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	status := http.StatusOK
	if ranged {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	body := data[start : end+1]
	cut := int64(-1)
	stall := false
	s.mu.Lock()
	throttle := s.throttle
	if f := s.faults[name]; f != nil && f.times > 0 {
		switch {
		case f.corrupt:
			f.times--
			body = append([]byte(nil), body...)
			for i := 0; i < len(body); i += 997 {
				body[i] ^= 0x5a
			}
		case f.every && f.cutAt < end-start+1:
			f.times--
			cut = f.cutAt
		case !f.every && f.cutAt > start && f.cutAt <= end:
			f.times--
			cut, stall = f.cutAt-start, f.stall
		}
	}
	s.mu.Unlock()
	w.WriteHeader(status)
	if cut >= 0 {
		body = body[:cut]
	}
	const chunk = 16 << 10
	for len(body) > 0 {
		n := min(chunk, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		body = body[n:]
		if throttle > 0 {
			w.(http.Flusher).Flush()
			time.Sleep(throttle)
		}
	}
	if cut >= 0 {
		w.(http.Flusher).Flush()
		if stall {
			<-r.Context().Done() // the client cancelled or closed the connection
			return
		}
		panic(http.ErrAbortHandler) // close the connection mid-body
	}
}

// parseRange reads "bytes=a-", "bytes=a-b" or "bytes=-n" for a file of size bytes.
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	if a == "" { // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, size > 0
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}
