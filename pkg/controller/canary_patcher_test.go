package controller

import (
	"context"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/versions"
)

// The integration tests prove the patches against the apiserver; this one
// counts the requests each kind of change costs.
func TestCanaryPatcherRequests(t *testing.T) {
	ctx := context.Background()
	var patches, statusPatches int
	stored := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	kube := fake.NewClientBuilder().
		WithScheme(testScheme(t)).
		WithObjects(stored).
		WithStatusSubresource(stored).
		WithInterceptorFuncs(interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
				patches++
				return c.Patch(ctx, obj, p, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				statusPatches++
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).Build()
	tracker := versions.New(testScheme(t))
	obj := &serinv1.Canary{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(stored), obj); err != nil {
		t.Fatal(err)
	}

	p, err := newCanaryPatcher(kube, tracker, obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Patch(ctx, obj); err != nil || patches+statusPatches != 0 {
		t.Fatalf("no change: err %v, %d patches, %d status patches; want none", err, patches, statusPatches)
	}

	// A phase and its conditions are one status patch.
	obj.Status.Phase = serinv1.CanaryPhaseProgressing
	conditions.MarkReconciling(obj, "Progressing", "step 1")
	conditions.MarkUnknown(obj, meta.ReadyCondition, "Progressing", "step 1")
	obj.Finalizers = []string{serinv1.CanaryFinalizer}
	if err := p.Patch(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if patches != 1 || statusPatches != 1 {
		t.Errorf("finalizer and status: %d patches, %d status patches; want 1 and 1", patches, statusPatches)
	}
	if !tracker.Current(obj) {
		t.Error("the version the status patch returned is not recorded")
	}

	got := &serinv1.Canary{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(stored), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != serinv1.CanaryPhaseProgressing || !conditions.IsReconciling(got) || !conditions.IsUnknown(got, meta.ReadyCondition) || len(got.Finalizers) != 1 {
		t.Errorf("stored: phase %q, conditions %+v, finalizers %v", got.Status.Phase, got.Status.Conditions, got.Finalizers)
	}

	// A later Patch writes only what changed since the last one.
	conditions.Delete(obj, meta.ReconcilingCondition)
	if err := p.Patch(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if patches != 1 || statusPatches != 2 {
		t.Errorf("one condition removed: %d patches, %d status patches; want 1 and 2", patches, statusPatches)
	}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(stored), got); err != nil {
		t.Fatal(err)
	}
	if conditions.Has(got, meta.ReconcilingCondition) || !conditions.Has(got, meta.ReadyCondition) {
		t.Errorf("stored conditions %+v: want Ready only", got.Status.Conditions)
	}
}

// TestCanaryPatcherFinalizerIsLocked: the finalizer patch carries the
// version it was decided on, so a finalizer list someone else changed
// meanwhile is not overwritten.
func TestCanaryPatcherFinalizerIsLocked(t *testing.T) {
	ctx := context.Background()
	stored := &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(stored).WithStatusSubresource(stored).Build()
	obj := &serinv1.Canary{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(stored), obj); err != nil {
		t.Fatal(err)
	}
	p, err := newCanaryPatcher(kube, versions.New(testScheme(t)), obj)
	if err != nil {
		t.Fatal(err)
	}
	other := obj.DeepCopy()
	other.Finalizers = []string{"example.com/keep"}
	if err := kube.Update(ctx, other); err != nil {
		t.Fatal(err)
	}

	obj.Finalizers = []string{serinv1.CanaryFinalizer}
	if err := p.Patch(ctx, obj); !apierrors.IsConflict(err) {
		t.Fatalf("patching a stale finalizer list: %v, want a conflict", err)
	}
	got := &serinv1.Canary{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(stored), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != "example.com/keep" {
		t.Errorf("finalizers %v, want the other writer's", got.Finalizers)
	}
}

func testScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}
