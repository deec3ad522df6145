// Package buildinfo is what a binary knows of its own build: the version
// and commit that make build sets with -ldflags, and the Go version.
package buildinfo

import "runtime"

// Version and Commit are set at build time:
//
//	-ldflags "-X github.com/serin-dev/serin/pkg/buildinfo.Version=v1.2.3 -X github.com/serin-dev/serin/pkg/buildinfo.Commit=abc1234"
var (
	Version = "dev"
	Commit  = "unknown"
)

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }
