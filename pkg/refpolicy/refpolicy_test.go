package refpolicy

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestAllows(t *testing.T) {
	shared := Policy{Shared: []string{"serin-system", "istio-system"}}
	for _, tt := range []struct {
		name       string
		policy     Policy
		canary, ns string
		allowed    bool
		message    string
	}{
		{name: "own namespace", policy: Policy{}, canary: "team-a", ns: "team-a", allowed: true},
		{name: "unset namespace is the Canary's", policy: Policy{OwnOnly: true}, canary: "team-a", ns: "", allowed: true},
		{name: "a shared namespace", policy: shared, canary: "team-a", ns: "istio-system", allowed: true},
		{name: "another team's namespace", policy: shared, canary: "team-a", ns: "team-b", message: "MetricTemplate team-b/t is in namespace team-b, which is not shared with Canaries of other namespaces (shared: serin-system, istio-system;"},
		{name: "nothing shared", policy: Policy{}, canary: "team-a", ns: "team-b", message: "(shared: none;"},
		{name: "own only forbids shared ones too", policy: Policy{Shared: []string{"serin-system"}, OwnOnly: true}, canary: "team-a", ns: "serin-system", message: "--no-cross-namespace-refs forbids"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tt.policy.Allows(tt.canary, "MetricTemplate", tt.ns, "t")
			if tt.allowed {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.message)))
		})
	}
}
