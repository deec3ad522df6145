package workload

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDeploymentState(t *testing.T) {
	deploy := func(replicas int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: 4},
			Spec:       appsv1.DeploymentSpec{Replicas: new(replicas)},
			Status:     st,
		}
	}
	done := func(n int32) appsv1.DeploymentStatus {
		return appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	}
	with := func(st appsv1.DeploymentStatus, f func(*appsv1.DeploymentStatus)) appsv1.DeploymentStatus {
		f(&st)
		return st
	}
	tests := []struct {
		name      string
		d         *appsv1.Deployment
		threshold int
		want      State
	}{
		{
			name: "rolled out", d: deploy(3, done(3)), threshold: 100,
			want: State{Exists: true, Ready: true},
		},
		{
			name: "scaled to zero", d: deploy(0, done(0)), threshold: 100,
			want: State{Exists: true, Message: "scaled to zero"},
		},
		{
			name:      "generation not observed",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.ObservedGeneration = 3 })),
			threshold: 100,
			want:      State{Exists: true, Message: "waiting for the Deployment controller to observe generation 4"},
		},
		{
			name: "replicas not updated yet",
			d: deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) {
				s.Replicas, s.UpdatedReplicas = 4, 1
			})),
			threshold: 100,
			want:      State{Exists: true, Message: "1 of 3 replicas updated"},
		},
		{
			name:      "old replicas left",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.Replicas = 4 })),
			threshold: 100,
			want:      State{Exists: true, Message: "1 old replicas pending termination"},
		},
		{
			name:      "not every updated replica available",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.AvailableReplicas, s.ReadyReplicas = 2, 2 })),
			threshold: 100,
			want:      State{Exists: true, Message: "2 of 3 updated replicas available"},
		},
		{
			name:      "threshold met",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.AvailableReplicas, s.ReadyReplicas = 2, 2 })),
			threshold: 50,
			want:      State{Exists: true, Ready: true},
		},
		{
			// 50% of 3 is 1.5, rounded up to 2.
			name:      "threshold rounds up",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.AvailableReplicas, s.ReadyReplicas = 1, 1 })),
			threshold: 50,
			want:      State{Exists: true, Message: "1 of 3 updated replicas available, 2 needed (readyThreshold 50%)"},
		},
		{
			name:      "threshold 0 only needs the rollout",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.AvailableReplicas, s.ReadyReplicas = 0, 0 })),
			threshold: 0,
			want:      State{Exists: true, Ready: true},
		},
		{
			name:      "the threshold does not excuse an unfinished rollout",
			d:         deploy(3, with(done(3), func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 2 })),
			threshold: 50,
			want:      State{Exists: true, Message: "2 of 3 replicas updated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := deploymentState(tt.d, tt.threshold)
			g.Expect(got.Pods).To(Equal(ptr.Deref(tt.d.Spec.Replicas, 1)))
			g.Expect(got.ReadyPods).To(Equal(min(tt.d.Status.AvailableReplicas, got.Pods)))
			got.Pods, got.ReadyPods = 0, 0
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestDaemonSetState(t *testing.T) {
	ds := func(scaledToZero bool, st appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: st}
		if scaledToZero {
			d.Spec.Template.Spec.NodeSelector = map[string]string{ScaleToZeroNodeSelector: "true"}
		}
		return d
	}
	status := func(desired, updated, ready int32) appsv1.DaemonSetStatus {
		return appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: desired, CurrentNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: ready}
	}
	tests := []struct {
		name      string
		ds        *appsv1.DaemonSet
		threshold int
		want      State
	}{
		{name: "rolled out", ds: ds(false, status(4, 4, 4)), threshold: 100, want: State{Exists: true, Ready: true}},
		{
			name: "generation not observed", threshold: 100,
			ds:   ds(false, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberReady: 4}),
			want: State{Exists: true, Message: "waiting for the DaemonSet controller to observe generation 2"},
		},
		{name: "scaled to zero", ds: ds(true, status(0, 0, 0)), threshold: 100, want: State{Exists: true, Message: "scaled to zero"}},
		{name: "no node", ds: ds(false, status(0, 0, 0)), threshold: 100, want: State{Exists: true, Message: "no node to run on"}},
		{name: "not updated", ds: ds(false, status(4, 3, 4)), threshold: 100, want: State{Exists: true, Message: "3 of 4 pods updated"}},
		{name: "not ready", ds: ds(false, status(4, 4, 3)), threshold: 100, want: State{Exists: true, Message: "3 of 4 pods ready"}},
		{name: "threshold met", ds: ds(false, status(4, 4, 3)), threshold: 75, want: State{Exists: true, Ready: true}},
		{
			// 80% of 4 is 3.2, rounded up to 4.
			name: "threshold rounds up", ds: ds(false, status(4, 4, 3)), threshold: 80,
			want: State{Exists: true, Message: "3 of 4 pods ready, 4 needed (readyThreshold 80%)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := daemonSetState(tt.ds, tt.threshold)
			g.Expect(got.Pods).To(Equal(tt.ds.Status.DesiredNumberScheduled))
			g.Expect(got.ReadyPods).To(Equal(min(tt.ds.Status.NumberReady, got.Pods)))
			got.Pods, got.ReadyPods = 0, 0
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestStateOfMissingWorkload(t *testing.T) {
	g := NewWithT(t)
	g.Expect(stateOf(daemonSetTarget{}, nil, "agent-primary", nil)).To(Equal(State{Message: "DaemonSet agent-primary not found"}))
	// The Canary's threshold reaches the kind's state.
	d := &appsv1.Deployment{
		Spec:   appsv1.DeploymentSpec{Replicas: new(int32(2))},
		Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1},
	}
	g.Expect(stateOf(deploymentTarget{}, d, "x", nil).Ready).To(BeFalse(), "default threshold is 100")
	g.Expect(stateOf(deploymentTarget{}, d, "x", new(50)).Ready).To(BeTrue())
}
