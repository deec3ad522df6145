// Package refpolicy decides which namespaces a Canary may take its
// MetricTemplates and AlertProviders from. A reference carries the
// referenced object's credentials (a Prometheus token, a Slack webhook) to
// whoever writes the Canary, so by default a Canary reaches only its own
// namespace and the namespaces the operator shares (where a platform team
// keeps common templates).
package refpolicy

import (
	"fmt"
	"slices"
	"strings"
)

// Policy is the operator's choice (--shared-namespaces,
// --no-cross-namespace-refs).
type Policy struct {
	// Shared are the namespaces any Canary may reference besides its own.
	Shared []string
	// OwnOnly forbids every reference to another namespace, shared or not.
	OwnOnly bool
}

// Allows returns nil when a Canary in canaryNamespace may reference the
// kind named name in namespace, and an error saying why not otherwise.
func (p Policy) Allows(canaryNamespace, kind, namespace, name string) error {
	if namespace == "" || namespace == canaryNamespace {
		return nil
	}
	if p.OwnOnly {
		return fmt.Errorf("%s %s/%s is in another namespace, which --no-cross-namespace-refs forbids", kind, namespace, name)
	}
	if slices.Contains(p.Shared, namespace) {
		return nil
	}
	shared := "none"
	if len(p.Shared) > 0 {
		shared = strings.Join(p.Shared, ", ")
	}
	return fmt.Errorf("%s %s/%s is in namespace %s, which is not shared with Canaries of other namespaces (shared: %s; the operator shares one with --shared-namespaces)", kind, namespace, name, namespace, shared)
}
