// Package workload reads and writes the workloads of a Canary: the target (a
// Deployment or DaemonSet the user owns), the <target>-primary copy that
// Serin owns and that serves production traffic, the copies of the
// ConfigMaps and Secrets they use, and the primary's HorizontalPodAutoscaler.
//
// Everything that turns one object into another is a pure function, tested
// with tables; the methods of Workloads only read, compare and write. Objects
// Serin owns are written with server-side apply, and only when what would be
// applied differs from what was applied last. The target is only ever
// patched, and only its replica count (Deployment) or one nodeSelector key
// (DaemonSet), so the tools that own it are not fought.
package workload

import (
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
)

const (
	// ScaleToZeroNodeSelector is the nodeSelector key that scales a
	// DaemonSet to zero: no node carries it, so no pod is scheduled, while
	// the DaemonSet and its history stay in place.
	ScaleToZeroNodeSelector = "serin.dev/scale-to-zero"

	// ConfigTrackingAnnotation set to ConfigTrackingDisabled on a ConfigMap
	// or Secret keeps Serin from copying and hashing it: the primary then
	// uses the original, and changing it starts no release.
	ConfigTrackingAnnotation = "serin.dev/config-tracking"
	ConfigTrackingDisabled   = "disabled"
	// FlaggerConfigTrackingAnnotation is Flagger's name for it, which the
	// ConfigMaps and Secrets of a Flagger user already carry; it is read
	// the same way.
	FlaggerConfigTrackingAnnotation = "flagger.app/config-tracking"

	// RevisionAnnotation on the primary's pod template names the revision
	// it runs. A change of config data alone changes it too, which is what
	// rolls the primary's pods onto the new data.
	RevisionAnnotation = v1beta1.RevisionAnnotation

	// AppliedHashAnnotation holds the hash of what Serin last applied to an
	// object it owns; an unchanged hash means there is nothing to write.
	AppliedHashAnnotation = apply.HashAnnotation

	// DefaultFieldManager is the server-side apply field manager.
	DefaultFieldManager = apply.FieldManager

	// defaultReadyThreshold applies when the Canary sets no ready threshold.
	defaultReadyThreshold = 100
)

// ErrInvalid marks errors that retrying cannot fix until the user changes
// the target or the Canary, such as a selector without any of the selector
// labels or a name taken by an object the Canary does not control. The
// reconciler reports them as Stalled.
var ErrInvalid = errors.New("invalid canary setup")

// ErrRevisionChanged is returned by Promote when the target no longer holds
// the revision to promote: only an analysed revision reaches the primary.
var ErrRevisionChanged = errors.New("the target's revision changed")

// Workloads does the Kubernetes I/O for the workloads of Canaries.
type Workloads struct {
	reader  client.Reader
	client  client.Client
	history client.Reader
	opts    Options
}

// New returns Workloads reading through reader (typically the manager's
// cache-backed client) and writing through c. c's scheme must know apps/v1,
// core/v1, autoscaling/v2 and serin.dev/v1beta1.
func New(reader client.Reader, c client.Client, opts Options) *Workloads {
	w := &Workloads{reader: reader, client: c, history: opts.HistoryReader, opts: opts.withDefaults()}
	if w.history == nil {
		w.history = c
	}
	return w
}
