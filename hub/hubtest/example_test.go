package hubtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/hub/hubtest"
)

// A fake hub serves a repository on loopback; package hub downloads from it as it
// would from huggingface.co, LFS redirect and sha256 check included.
func Example() {
	s := hubtest.NewServer()
	defer s.Close()
	s.AddRepo(hubtest.Repo{ID: "org/tiny", Files: []hubtest.File{
		{Name: "config.json", Data: []byte(`{"model_type":"llama"}`)},
		{Name: "model.safetensors", Data: []byte("weights"), LFS: true},
	}})
	cache, _ := os.MkdirTemp("", "hubcache")
	defer os.RemoveAll(cache)
	c := &hub.Client{Endpoint: s.URL, CacheDir: cache}
	path, err := c.DownloadFile(context.Background(), hub.Model, "org/tiny", "main", "model.safetensors")
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(path)
	fmt.Println(filepath.Base(path), string(data), len(s.Requests()) > 0)
	// Output: model.safetensors weights true
}
