package cli

import (
	"bytes"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func setStamp(t *testing.T, version, commit, date string) {
	t.Helper()
	v, c, d := Version, Commit, Date
	t.Cleanup(func() { Version, Commit, Date = v, c, d })
	Version, Commit, Date = version, commit, date
}

// The release build's -X stamps win over the build information.
func TestVersionPrintsStamps(t *testing.T) {
	setStamp(t, "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-05T10:00:00Z")
	var out, errb bytes.Buffer
	if code := Main([]string{"version"}, &IO{In: strings.NewReader(""), Out: &out, Err: &errb}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "bidora v1.2.3 (0123456789ab, 2026-12-05T10:00:00Z) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	if code := Main([]string{"version", "--json"}, &IO{In: strings.NewReader(""), Out: &out, Err: &errb}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["version"] != "v1.2.3" || got["commit"] != Commit || got["date"] != Date {
		t.Fatalf("json %v", got)
	}
}

// Without stamps, `go install ...@v1.2.3` reports its module version and a
// checkout build its vcs.revision and vcs.time.
func TestBuildStampFromBuildInfo(t *testing.T) {
	setStamp(t, "dev", "", "")
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}}}
	if v, c, d := buildStamp(bi, true); v != "v1.4.0" || c != "abc" || d != "2026-01-02T03:04:05Z" {
		t.Fatalf("got %q %q %q", v, c, d)
	}
	bi.Main.Version = "(devel)"
	if v, _, _ := buildStamp(bi, true); v != "dev" {
		t.Fatalf("a (devel) build reports %q, want dev", v)
	}
	if v, c, d := buildStamp(nil, false); v != "dev" || c != "" || d != "" {
		t.Fatalf("no build info: %q %q %q", v, c, d)
	}
}
