package analysis

import (
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// observer answers a CheckRequest as the reconciler's checks would for
// spec: one observation per requested webhook and metric.
type observer func(spec serinv1.CanarySpec, req CheckRequest) CheckResults

// answers configures an observer: every webhook answers 200 unless its type
// has another code or no answer, rollback webhooks answer 404 (no rollback
// wanted), and every metric measures metric.
type answers struct {
	codes    map[serinv1.HookType]int
	noAnswer map[serinv1.HookType]bool
	metric   MetricObservation
}

func observe(mods ...func(*answers)) observer {
	a := answers{codes: map[serinv1.HookType]int{serinv1.RollbackHook: 404}, noAnswer: map[serinv1.HookType]bool{}, metric: MetricObservation{Value: 100}}
	for _, m := range mods {
		m(&a)
	}
	return func(spec serinv1.CanarySpec, req CheckRequest) CheckResults {
		var res CheckResults
		for _, h := range spec.Analysis.Webhooks {
			if !req.Wants(h) {
				continue
			}
			o := WebhookObservation{Name: h.Name, Type: HookType(h), StatusCode: 200}
			if c, ok := a.codes[HookType(h)]; ok {
				o.StatusCode = c
			}
			if a.noAnswer[HookType(h)] {
				o.StatusCode, o.Err = 0, "dial tcp: connection refused"
			} else if o.StatusCode > 202 {
				o.Err = "answered with an error"
			}
			res.Webhooks = append(res.Webhooks, o)
		}
		if req.Analysis {
			for _, m := range spec.Analysis.Metrics {
				o := a.metric
				o.Name = m.Name
				res.Metrics = append(res.Metrics, o)
			}
		}
		return res
	}
}

func code(t serinv1.HookType, c int) func(*answers) {
	return func(a *answers) { a.codes[t] = c }
}

func unanswered(t serinv1.HookType) func(*answers) {
	return func(a *answers) { a.noAnswer[t] = true }
}

func measured(o MetricObservation) func(*answers) {
	return func(a *answers) { a.metric = o }
}

var (
	passing     = observe()
	gatesClosed = observe(
		code(serinv1.ConfirmRolloutHook, 403), code(serinv1.ConfirmTrafficIncreaseHook, 403), code(serinv1.ConfirmPromotionHook, 403))
	rollbackAsked = observe(code(serinv1.RollbackHook, 200))
	noData        = observe(measured(MetricObservation{NoData: true}))
	queryError    = observe(measured(MetricObservation{Err: "Post \"http://prometheus/api/v1/query\": dial tcp: connection refused"}))
	belowMin      = observe(measured(MetricObservation{Value: 90}))
)

// decideLikeTheReconciler runs Decide, and when it asks for checks, answers
// them with obs and decides again.
func decideLikeTheReconciler(in Input, obs observer) Decision {
	d := Decide(in)
	if d.Run == nil || obs == nil {
		return d
	}
	res := obs(in.Spec, *d.Run)
	in.Checks = &res
	return Decide(in)
}
