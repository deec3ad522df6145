// Package naming holds the names Serin gives the objects it generates for a
// Canary and the label that tells primary pods from canary pods. The
// workload, Service and routing code all derive names from here, so they
// agree on them.
package naming

import serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

const (
	// PrimarySuffix turns the name of the target, of a config or of an
	// autoscaler into the name of its primary copy, and the value of the
	// target's selector label into that of the primary.
	PrimarySuffix = "-primary"
	// CanarySuffix names the Service that selects the canary's pods.
	CanarySuffix = "-canary"
)

// PrimaryName is the name of the primary copy of the object named name.
func PrimaryName(name string) string { return name + PrimarySuffix }

// KeptRevisionName is the name of the ControllerRevision (and, for a
// workload, the Secret) that keeps revision rev of the primary named
// primary.
func KeptRevisionName(primary, rev string) string {
	// A name is at most 253 characters; rev is 16.
	const maxPrefix = 253 - 1 - 16
	if len(primary) > maxPrefix {
		primary = primary[:maxPrefix]
	}
	return primary + "-" + rev
}

// Services are the names of a Canary's Services.
type Services struct {
	Apex, Primary, Canary string
}

// ServicesOf returns the Service names: service.name (or the target's
// name), with the primary and canary suffixes.
func ServicesOf(c *serinv1.Canary) Services {
	apex := c.Spec.Service.Name
	if apex == "" {
		apex = c.Spec.TargetRef.Name
	}
	return Services{Apex: apex, Primary: PrimaryName(apex), Canary: apex + CanarySuffix}
}

// Selector is the label that tells primary pods from canary pods: canary
// pods have Key=Value, primary pods Key=Value-primary.
type Selector struct {
	Key, Value string
}

// Primary is the primary pods' label value.
func (s Selector) Primary() map[string]string { return map[string]string{s.Key: PrimaryName(s.Value)} }

// Canary is the canary pods' label value.
func (s Selector) Canary() map[string]string { return map[string]string{s.Key: s.Value} }
