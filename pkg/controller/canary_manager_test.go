package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestControllingCanaryMapsOnlyObjectsACanaryControls(t *testing.T) {
	ref := func(apiVersion, kind string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: "web", UID: "u1", Controller: ptr.To(controller)}
	}
	canary := serinv1.GroupVersion.String()
	tests := []struct {
		name   string
		owners []metav1.OwnerReference
		want   []reconcile.Request
	}{
		{"controlled by a Canary", []metav1.OwnerReference{ref(canary, serinv1.CanaryKind, true)},
			[]reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "apps", Name: "web"}}}},
		{"owned but not controlled", []metav1.OwnerReference{ref(canary, serinv1.CanaryKind, false)}, nil},
		{"controlled by another kind", []metav1.OwnerReference{ref("apps/v1", "Deployment", true)}, nil},
		{"a Canary kind of another group", []metav1.OwnerReference{ref("flagger.app/v1beta1", serinv1.CanaryKind, true)}, nil},
		{"no owner", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-primary", OwnerReferences: tt.owners}}
			got := controllingCanary(context.Background(), svc)
			if len(got) != len(tt.want) || len(got) == 1 && got[0] != tt.want[0] {
				t.Errorf("controllingCanary = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGeneratedWorkloadsAreNoTargets(t *testing.T) {
	ctx := context.Background()
	var lists int
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithIndex(&serinv1.Canary{}, targetIndex, func(o client.Object) []string {
			return []string{targetKey(o.(*serinv1.Canary).Spec.TargetRef.Kind, o.(*serinv1.Canary).Spec.TargetRef.Name)}
		}).
		WithObjects(&serinv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
			Spec:       serinv1.CanarySpec{TargetRef: serinv1.TargetReference{Kind: "Deployment", Name: "web"}},
		}).
		WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lists++
			return c.List(ctx, list, opts...)
		}}).Build()
	r := &CanaryReconciler{Client: kube}
	toCanaries := r.canariesOfTarget("Deployment")

	target := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	if got := toCanaries(ctx, target); len(got) != 1 || got[0].Name != "web" || lists != 1 {
		t.Errorf("target: requests %v after %d lookups; want the Canary web after 1", got, lists)
	}
	primary := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-primary", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: serinv1.GroupVersion.String(), Kind: serinv1.CanaryKind, Name: "web", UID: "u1", Controller: ptr.To(true)},
	}}}
	if got := toCanaries(ctx, primary); len(got) != 0 || lists != 1 {
		t.Errorf("primary: requests %v after %d lookups; want none and no new lookup", got, lists)
	}
}
