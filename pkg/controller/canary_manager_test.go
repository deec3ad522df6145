package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
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
