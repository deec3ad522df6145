package workload

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options tune how primaries are built.
type Options struct {
	// SelectorLabels are the label keys tried, in order, in the target's
	// spec.selector.matchLabels; the first one found is rewritten to
	// <value>-primary in the primary. Default: DefaultSelectorLabels.
	SelectorLabels []string
	// IncludeLabelPrefixes select the target's labels copied to the
	// primary; "*" means all, which is the default.
	IncludeLabelPrefixes []string
	// IncludeAnnotationPrefixes select the target's annotations copied to
	// the primary; "*" means all, which is the default. Annotations that
	// kubectl and the workload controllers keep on the target are never
	// copied (see controllerAnnotation).
	IncludeAnnotationPrefixes []string
	// FieldManager names Serin in server-side apply. Default:
	// DefaultFieldManager.
	FieldManager string
	// HistoryReader reads the kept revisions (ControllerRevisions) around
	// the cache, which does not watch them, and confirms a target that the
	// cache shows scaled up while no release runs. Default: the writing
	// client.
	HistoryReader client.Reader
}

// DefaultSelectorLabels are the selector labels Flagger recognises.
var DefaultSelectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

func (o Options) withDefaults() Options {
	if len(o.SelectorLabels) == 0 {
		o.SelectorLabels = DefaultSelectorLabels
	}
	if len(o.IncludeLabelPrefixes) == 0 {
		o.IncludeLabelPrefixes = []string{"*"}
	}
	if len(o.IncludeAnnotationPrefixes) == 0 {
		o.IncludeAnnotationPrefixes = []string{"*"}
	}
	if o.FieldManager == "" {
		o.FieldManager = DefaultFieldManager
	}
	return o
}
