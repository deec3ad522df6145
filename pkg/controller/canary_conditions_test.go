package controller

import (
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestSetPhaseConditions(t *testing.T) {
	tests := []struct {
		phase           serinv1.CanaryPhase
		wantReady       metav1.ConditionStatus
		wantReconciling bool
		wantStalled     bool
		wantPromoted    metav1.ConditionStatus
		wantObserved    int64
	}{
		{serinv1.CanaryPhaseInitializing, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhaseInitialized, metav1.ConditionTrue, false, false, metav1.ConditionTrue, 3},
		{serinv1.CanaryPhaseWaiting, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhaseProgressing, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhaseWaitingPromotion, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhasePromoting, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhaseFinalising, metav1.ConditionUnknown, true, false, metav1.ConditionFalse, 1},
		{serinv1.CanaryPhaseSucceeded, metav1.ConditionTrue, false, false, metav1.ConditionTrue, 3},
		{serinv1.CanaryPhaseFailed, metav1.ConditionFalse, false, true, metav1.ConditionFalse, 3},
	}
	for _, tt := range tests {
		t.Run(string(tt.phase), func(t *testing.T) {
			c := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 3}}
			c.Spec.TargetRef.Name = "web"
			// A previous outcome that must not leak into this one.
			conditions.MarkStalled(c, "Old", "old")
			c.Status.ObservedGeneration = 1
			c.Status.Phase = tt.phase
			setPhaseConditions(c, "the message of "+string(tt.phase))

			if got := conditions.Get(c, meta.ReadyCondition); got == nil || got.Status != tt.wantReady {
				t.Errorf("Ready = %v, want %s", got, tt.wantReady)
			}
			if conditions.IsReconciling(c) != tt.wantReconciling || conditions.IsStalled(c) != tt.wantStalled {
				t.Errorf("Reconciling %v Stalled %v, want %v %v", conditions.IsReconciling(c), conditions.IsStalled(c), tt.wantReconciling, tt.wantStalled)
			}
			if got := conditions.Get(c, serinv1.PromotedCondition); got == nil || got.Status != tt.wantPromoted {
				t.Errorf("Promoted = %v, want %s", got, tt.wantPromoted)
			}
			if c.Status.ObservedGeneration != tt.wantObserved {
				t.Errorf("observedGeneration %d, want %d: it advances only with a settled outcome", c.Status.ObservedGeneration, tt.wantObserved)
			}
			if msg := conditions.GetMessage(c, meta.ReadyCondition); msg == "" {
				t.Error("Ready has no message")
			}
		})
	}
}
