package workload

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestStateChanged(t *testing.T) {
	// A rollout to three replicas, half way.
	deployment := func(mod func(*appsv1.DeploymentStatus)) *appsv1.Deployment {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(3))}}
		d.Generation = 2
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2}
		mod(&d.Status)
		return d
	}
	daemonSet := func(mod func(*appsv1.DaemonSetStatus)) *appsv1.DaemonSet {
		ds := &appsv1.DaemonSet{}
		ds.Generation = 2
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 2, NumberReady: 2}
		mod(&ds.Status)
		return ds
	}
	same := deployment(func(*appsv1.DeploymentStatus) {})
	sameDS := daemonSet(func(*appsv1.DaemonSetStatus) {})
	behind := deployment(func(s *appsv1.DeploymentStatus) { s.ObservedGeneration = 1 })
	tests := []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"a condition's timestamp", same, deployment(func(s *appsv1.DeploymentStatus) {
			s.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue}}
		}), false},
		{"terminating pods", same, deployment(func(s *appsv1.DeploymentStatus) { s.TerminatingReplicas = new(int32(1)) }), false},
		{"the status catches up with the spec", behind, same, true},
		{"an observed generation beyond the spec's", same, deployment(func(s *appsv1.DeploymentStatus) { s.ObservedGeneration = 3 }), false},
		{"one more updated replica, others still missing", same, deployment(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 2 }), false},
		{"every replica updated", same, deployment(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 3 }), true},
		{"the old replicas gone", deployment(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 3 }), deployment(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas, s.Replicas = 3, 3 }), true},
		{"one old replica gone, others left", same, deployment(func(s *appsv1.DeploymentStatus) { s.Replicas = 3 }), false},
		{"available replicas", same, deployment(func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 3 }), true},
		{"available replicas beyond the wanted", deployment(func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 3 }), deployment(func(s *appsv1.DeploymentStatus) { s.AvailableReplicas = 4 }), false},
		{"DaemonSet misscheduled count", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.NumberMisscheduled = 1 }), false},
		{"DaemonSet ready pods", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.NumberReady = 3 }), true},
		{"DaemonSet desired pods", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.DesiredNumberScheduled = 4 }), true},
		{"DaemonSet every pod updated", sameDS, daemonSet(func(s *appsv1.DaemonSetStatus) { s.UpdatedNumberScheduled = 3 }), true},
		{"other kinds always", &corev1.Service{}, &corev1.Service{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StateChanged(tt.old, tt.new); got != tt.want {
				t.Errorf("StateChanged = %v, want %v", got, tt.want)
			}
			// A skipped update must leave the State as it was, at any
			// threshold, but for the message.
			if tt.want {
				return
			}
			for _, threshold := range []int{50, 100} {
				o, n := stateWithoutMessage(tt.old, threshold), stateWithoutMessage(tt.new, threshold)
				if o != n {
					t.Errorf("readyThreshold %d: State %+v became %+v", threshold, o, n)
				}
			}
		})
	}
}

func stateWithoutMessage(obj client.Object, readyThreshold int) State {
	var s State
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s = deploymentState(o, readyThreshold)
	case *appsv1.DaemonSet:
		s = daemonSetState(o, readyThreshold)
	}
	s.Message = ""
	return s
}
