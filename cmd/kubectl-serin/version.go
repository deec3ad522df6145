package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/serin-dev/serin/pkg/buildinfo"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "kubectl-serin %s (commit %s) %s %s/%s\n", buildinfo.Version, buildinfo.Commit, buildinfo.GoVersion(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
