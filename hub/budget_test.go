package hub

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/bidora/bidora/hub/hubtest"
)

// TestRetryBudget: a server that cuts every body short is not asked forever; the
// call ends with an error naming the file and the budget, and keeps the part.
func TestRetryBudget(t *testing.T) {
	const name = "model.safetensors"
	data := randBytes(7, 30_000)
	cases := []struct {
		name     string
		cutEvery int64
		budget   int
		wantErr  bool
		maxGETs  int // CDN GETs allowed
	}{
		{"cut every 100 bytes, default budget", 100, 0, true, 51},
		{"cut every 100 bytes, budget 3", 100, 3, true, 4},
		{"cut every 10000 bytes, enough budget", 10_000, 0, false, 3},
		{"cut every 10000 bytes, budget 2 just enough", 10_000, 2, false, 3},
		{"cut every 10000 bytes, budget 1", 10_000, 1, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := hubtest.New(t)
			s.AddRepo(hubtest.Repo{ID: "org/cut", Files: []hubtest.File{{Name: name, Data: data, LFS: true}}})
			s.CutEvery(name, tc.cutEvery, 1<<30)
			c := newClient(s, t)
			c.RetryBudget = tc.budget
			p, err := c.DownloadFile(context.Background(), Model, "org/cut", "main", name)
			gets := 0
			for _, r := range s.Requests() {
				if r.Server == "cdn" && r.Method == "GET" {
					gets++
				}
			}
			if gets > tc.maxGETs {
				t.Errorf("%d GETs, want at most %d", gets, tc.maxGETs)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
					t.Fatal("content differs")
				}
				return
			}
			if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), `giving up on "model.safetensors" of org/cut@main after`) ||
				!strings.Contains(err.Error(), "retry budget") || !strings.Contains(err.Error(), "run again to resume") {
				t.Fatalf("want a network error naming the budget, got %v", err)
			}
		})
	}
}

// TestRedactEndpointCredentials: credentials inside HF_ENDPOINT (user:password@,
// signed query strings) never appear in error text or in Error.URL.
func TestRedactEndpointCredentials(t *testing.T) {
	s := hubtest.New(t)
	s.AddRepo(hubtest.Repo{ID: "org/open", Files: []hubtest.File{{Name: "config.json", Data: []byte("{}")}}})
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	withCreds := func(base, userinfo string) string {
		return strings.Replace(base, "://", "://"+userinfo+"@", 1)
	}
	const pw, user, sig, tok = "s3cr3tPassw0rd", "alice_user", "AbCdEf0123456789sig", "tokABCDEF98765"
	cases := []struct {
		name, endpoint string
		repo, file     string
		secrets        []string
		want           string // in the error
	}{
		{"userinfo, missing repo", withCreds(s.URL, user+":"+pw), "org/none", "config.json", []string{pw, user}, "***@"},
		{"userinfo, missing file", withCreds(s.URL, user+":"+pw), "org/open", "nope.json", []string{pw, user}, "not found"},
		{"userinfo, unreachable", withCreds(deadURL, user+":"+pw), "org/open", "config.json", []string{pw, user}, "***@"},
		{"escaped password", withCreds(deadURL, "bob:p%40ss%2Fw0rd"), "org/open", "config.json", []string{"p@ss/w0rd", "p%40ss%2Fw0rd"}, "***@"},
		{"signed query", deadURL + "/?X-Amz-Signature=" + sig + "&token=" + tok + "&X-Amz-Expires=60", "org/open", "config.json", []string{sig, tok}, "?…"},
		{"token only", deadURL, "org/open", "config.json", []string{s.Token}, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{Endpoint: tc.endpoint, CacheDir: t.TempDir(), Token: s.Token}
			_, err := c.DownloadFile(context.Background(), Model, tc.repo, "main", tc.file)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, secret := range tc.secrets {
				if strings.Contains(msg, secret) {
					t.Errorf("error shows %q: %s", secret, msg)
				}
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error lacks %q: %s", tc.want, msg)
			}
			var he *Error
			for e := error(err); errors.As(e, &he); e = he.Err {
				for _, secret := range tc.secrets {
					if strings.Contains(he.URL, secret) {
						t.Errorf("Error.URL shows %q: %s", secret, he.URL)
					}
				}
				if he.Err == nil {
					break
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://huggingface.co/org/x", "https://huggingface.co/org/x"},
		{"https://u:p@host:8080/a", "https://***@host:8080/a"},
		{"https://u@host/a", "https://***@host/a"},
		{"https://host/a?X-Amz-Signature=abc&token=t", "https://host/a?…"},
		{"https://u:p@host/a?sig=1", "https://***@host/a?…"},
		{"http://u:p@ho st/%zz?sig=1", "http://***@ho st/%zz?…"}, // not parseable
	}
	for _, c := range cases {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
