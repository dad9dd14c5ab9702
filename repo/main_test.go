package repo

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests an empty home and no global or system git configuration,
// so that the user's own global excludes file (which Walk honours, as git does)
// cannot change what the walks list; TestGlobalExcludes sets its own.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "repo-test-home")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for k, v := range map[string]string{"HOME": home, "XDG_CONFIG_HOME": "", "GIT_CONFIG_GLOBAL": os.DevNull, "GIT_CONFIG_NOSYSTEM": "1"} {
		os.Setenv(k, v)
	}
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}
