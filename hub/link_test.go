package hub

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/hub/hubtest"
)

// TestLinkFallbacks forces the snapshot pointers of linkPointer past symlinks (as on
// Windows without the privilege) to hard links, and past those to copies, and checks
// that every file still reads back whole, cached files are found without a download,
// and the blob stays in blobs/.
func TestLinkFallbacks(t *testing.T) {
	defer func(s, h func(string, string) error) { symlink, hardlink = s, h }(symlink, hardlink)
	for _, mode := range []string{"hardlink", "copy"} {
		t.Run(mode, func(t *testing.T) {
			symlink = func(string, string) error { return errors.New("symlinks not allowed (test)") }
			hardlink = os.Link
			if mode == "copy" {
				hardlink = func(string, string) error { return errors.New("hard links not supported (test)") }
			}
			s := hubtest.New(t)
			files := tinyModel()
			commit := s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: files})
			c := newClient(s, t)
			ctx := context.Background()
			for _, f := range []hubtest.File{files[len(files)-1], files[len(files)-2]} {
				p, err := c.DownloadFile(ctx, Model, "org/tiny", "main", f.Name)
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(p)
				if err != nil || fi.Mode()&os.ModeSymlink != 0 || !fi.Mode().IsRegular() {
					t.Fatalf("%s: want a regular file, got %v (%v)", f.Name, fi, err)
				}
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, f.Data) {
					t.Fatalf("%s: content differs (%v)", f.Name, err)
				}
				etag := hubtest.GitBlobSHA1(f.Data)
				if f.LFS {
					etag = hubtest.SHA256(f.Data)
				}
				bi, err := os.Stat(filepath.Join(c.RepoDir(Model, "org/tiny"), "blobs", etag))
				if err != nil {
					t.Fatalf("%s: blob gone: %v", f.Name, err)
				}
				if same := os.SameFile(fi, bi); same != (mode == "hardlink") {
					t.Errorf("%s: pointer and blob the same file = %v in %s mode", f.Name, same, mode)
				}
				// Cached by commit: found without a request.
				n := len(s.Requests())
				if q, err := c.DownloadFile(ctx, Model, "org/tiny", commit, f.Name); err != nil || q != p {
					t.Fatalf("%s again: %s, %v", f.Name, q, err)
				}
				if len(s.Requests()) != n {
					t.Errorf("%s: cached file by commit made a request", f.Name)
				}
			}
		})
	}
}
