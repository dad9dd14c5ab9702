package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version, Commit and Date are stamped in by the release build
// (tools/release/release.sh) with -ldflags "-X
// github.com/bidora/bidora/internal/cli.Version=v1.2.3 -X ...Commit=<sha> -X
// ...Date=<RFC 3339>". Where they are not, the Go toolchain's build
// information fills them: the module version of `go install ...@v1.2.3`, and
// vcs.revision and vcs.time of a build inside a git checkout.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// buildStamp is the version, commit and date to report: the stamped values,
// else what the build information holds.
func buildStamp(bi *debug.BuildInfo, ok bool) (version, commit, date string) {
	version, commit, date = Version, Commit, Date
	if !ok || bi == nil {
		return version, commit, date
	}
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && commit == "":
			commit = s.Value
		case s.Key == "vcs.time" && date == "":
			date = s.Value
		}
	}
	return version, commit, date
}

type versionOptions struct {
	JSON bool
}

func newVersionCmd(stdio *IO) *cobra.Command {
	opts := &versionOptions{}
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the bidora version",
		Example: "  bidora version\n  bidora version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(stdio, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func runVersion(stdio *IO, opts *versionOptions) error {
	version, commit, date := buildStamp(debug.ReadBuildInfo())
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(map[string]string{
			"version": version, "commit": commit, "date": date, "go": runtime.Version(),
			"os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	}
	fmt.Fprintf(stdio.Out, "bidora %s", version)
	switch {
	case commit != "" && date != "":
		fmt.Fprintf(stdio.Out, " (%.12s, %s)", commit, date)
	case commit != "":
		fmt.Fprintf(stdio.Out, " (%.12s)", commit)
	}
	fmt.Fprintf(stdio.Out, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
