package controller

import (
	"context"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
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

	p, err := newCanaryPatcher(kube, kube, tracker, obj)
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
	p, err := newCanaryPatcher(kube, kube, versions.New(testScheme(t)), obj)
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
	if err := router.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCanaryPatcherStatusIsCompareAndSwap against a real API server: a
// status decided from a Canary whose status another writer changed since is
// refused; a Canary that only got an annotation meanwhile takes it.
func TestCanaryPatcherStatusIsCompareAndSwap(t *testing.T) {
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	kube, err := client.New(env.Config, client.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}); err != nil {
		t.Fatal(err)
	}
	newCanary := func(t *testing.T, name string) (*serinv1.Canary, *canaryPatcher) {
		c := &serinv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
			Spec: serinv1.CanarySpec{
				TargetRef: serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				Service:   serinv1.CanaryService{Port: 80},
				Analysis:  serinv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 3},
			},
		}
		if err := kube.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Status.Phase, c.Status.Iterations = serinv1.CanaryPhaseProgressing, 1
		if err := kube.Status().Update(ctx, c); err != nil {
			t.Fatal(err)
		}
		read := &serinv1.Canary{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(c), read); err != nil {
			t.Fatal(err)
		}
		p, err := newCanaryPatcher(kube, kube, versions.New(testScheme(t)), read)
		if err != nil {
			t.Fatal(err)
		}
		return read, p
	}
	stored := func(t *testing.T, c *serinv1.Canary) *serinv1.Canary {
		got := &serinv1.Canary{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(c), got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("a status moved by another writer is not overwritten", func(t *testing.T) {
		mine, p := newCanary(t, "raced")
		theirs := mine.DeepCopy()
		theirs.Status.Iterations = 2
		if err := kube.Status().Update(ctx, theirs); err != nil {
			t.Fatal(err)
		}

		mine.Status.Iterations = 2
		mine.Status.CanaryWeight = 0
		mine.Status.FailedChecks = 1
		if err := p.Patch(ctx, mine); !apierrors.IsConflict(err) {
			t.Fatalf("a decision from a stale status: %v, want a conflict", err)
		}
		if got := stored(t, mine).Status; got.Iterations != 2 || got.FailedChecks != 0 {
			t.Errorf("stored status %+v, want the other writer's", got)
		}
	})

	t.Run("an annotation added meanwhile does not refuse the status", func(t *testing.T) {
		mine, p := newCanary(t, "annotated")
		other := mine.DeepCopy()
		other.Annotations = map[string]string{"example.com/note": "x"}
		if err := kube.Update(ctx, other); err != nil {
			t.Fatal(err)
		}

		mine.Status.Iterations = 2
		if err := p.Patch(ctx, mine); err != nil {
			t.Fatalf("patching after an annotation: %v", err)
		}
		got := stored(t, mine)
		if got.Status.Iterations != 2 || got.Annotations["example.com/note"] != "x" {
			t.Errorf("stored %+v / %v, want my status and their annotation", got.Status, got.Annotations)
		}
		if mine.ResourceVersion != got.ResourceVersion {
			t.Errorf("the patcher left resourceVersion %s, the server has %s", mine.ResourceVersion, got.ResourceVersion)
		}
	})
}
