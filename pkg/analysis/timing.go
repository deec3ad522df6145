package analysis

import (
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// MinInterval is the shortest analysis interval. A shorter one runs at
// MinInterval, as in Flagger, whose manifests may have one.
const MinInterval = 10 * time.Second

// Interval is the analysis interval of a Canary, at least MinInterval.
func Interval(spec serinv1.CanarySpec) time.Duration {
	i, err := time.ParseDuration(spec.Analysis.Interval)
	if err != nil || i <= 0 {
		return defaultInterval
	}
	return max(i, MinInterval)
}

// IntervalClamped reports whether spec.analysis.interval is shorter than
// MinInterval, and so runs at MinInterval.
func IntervalClamped(spec serinv1.CanarySpec) bool {
	i, err := time.ParseDuration(spec.Analysis.Interval)
	return err == nil && i > 0 && i < MinInterval
}

// ProgressDeadline is how long the workloads of a Canary may take to become
// ready.
func ProgressDeadline(spec serinv1.CanarySpec) time.Duration {
	if s := spec.ProgressDeadlineSeconds; s != nil && *s > 0 {
		return time.Duration(*s) * time.Second
	}
	return DefaultProgressDeadline
}

// UntilNextStep is how long until the next analysis step is due; zero or
// less means due.
func UntilNextStep(spec serinv1.CanarySpec, st serinv1.CanaryStatus, now time.Time) time.Duration {
	last := st.LastIterationTime
	if last.IsZero() {
		return 0
	}
	return last.Add(Interval(spec)).Sub(now)
}

// UntilDeadline is how long the workloads may still take to become ready,
// counted from the last progress (phase change or analysis step).
func UntilDeadline(spec serinv1.CanarySpec, st serinv1.CanaryStatus, now time.Time) time.Duration {
	since := st.LastTransitionTime.Time
	if t := st.LastIterationTime.Time; t.After(since) {
		since = t
	}
	return since.Add(ProgressDeadline(spec)).Sub(now)
}
