//go:build tools

// Package kwok records the kwok main package built by `make testbin`.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
