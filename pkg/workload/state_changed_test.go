package workload

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestStateChanged(t *testing.T) {
	deployment := func(mod func(*appsv1.DeploymentStatus)) *appsv1.Deployment {
		d := &appsv1.Deployment{Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}}
		mod(&d.Status)
		return d
	}
	daemonSet := func(mod func(*appsv1.DaemonSetStatus)) *appsv1.DaemonSet {
		ds := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 2, NumberReady: 2}}
		mod(&ds.Status)
		return ds
	}
	same := deployment(func(*appsv1.DeploymentStatus) {})
	sameDS := daemonSet(func(*appsv1.DaemonSetStatus) {})
	tests := []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"a condition's timestamp", same, deployment(func(s *appsv1.DeploymentStatus) {
			s.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue}}
		}), false},
		{"terminating pods", same, deployment(func(s *appsv1.DeploymentStatus) { s.TerminatingReplicas = new(int32(1)) }), false},
		{"observed generation", same, deployment(func(s *appsv1.DeploymentStatus) { s.ObservedGeneration = 3 }), true},
		{"replicas", same, deployment(func(s *appsv1.DeploymentStatus) { s.Replicas = 1 }), true},
		{"updated replicas", same, deployment(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 2 }), true},
		{"available replicas", same, deployment(func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 2 }), true},
		{"DaemonSet misscheduled count", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.NumberMisscheduled = 1 }), false},
		{"DaemonSet ready pods", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.NumberReady = 3 }), true},
		{"DaemonSet desired pods", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.DesiredNumberScheduled = 4 }), true},
		{"other kinds always", &corev1.Service{}, &corev1.Service{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StateChanged(tt.old, tt.new); got != tt.want {
				t.Errorf("StateChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
