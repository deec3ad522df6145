package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/serin-dev/serin/pkg/versions"
)

func TestOwnWritesSkipOnlyTheEventOfTheLastOwnWrite(t *testing.T) {
	ctx := context.Background()
	scheme := testScheme(t)
	target := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(target).Build()
	writes := versions.New(scheme)
	writer := ownWritesClient{Client: kube, writes: writes}
	pred := notOwnWrite(writes)
	passes := func(obj client.Object) bool {
		return pred.Update(event.UpdateEvent{ObjectOld: obj, ObjectNew: obj})
	}

	// Serin scales the target: the event of that write is skipped.
	scaled := target.DeepCopy()
	if err := kube.Get(ctx, client.ObjectKeyFromObject(target), scaled); err != nil {
		t.Fatal(err)
	}
	before := scaled.DeepCopy()
	scaled.Spec.Replicas = new(int32)
	if err := writer.Patch(ctx, scaled, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	if passes(scaled) {
		t.Error("the event of Serin's own patch starts a reconcile")
	}
	// The Deployment controller updates the status: a new version passes.
	rolled := scaled.DeepCopy()
	rolled.Status.ObservedGeneration = 2
	if err := kube.Status().Update(ctx, rolled); err != nil {
		t.Fatal(err)
	}
	if !passes(rolled) {
		t.Error("another writer's update is skipped")
	}
	// An object of another kind with the same name and version is not it.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: scaled.ResourceVersion}}
	if !passes(svc) {
		t.Error("a Service update is skipped for a Deployment write")
	}

	// Applies are recorded from the response: Services and workloads go
	// out as unstructured apply configurations (pkg/apply).
	apex := &unstructured.Unstructured{}
	apex.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
	apex.SetNamespace("apps")
	apex.SetName("web-apex")
	if err := unstructured.SetNestedStringMap(apex.Object, map[string]string{"app": "web-primary"}, "spec", "selector"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(apex.Object, []any{map[string]any{"port": int64(80)}}, "spec", "ports"); err != nil {
		t.Fatal(err)
	}
	if err := writer.Apply(ctx, client.ApplyConfigurationFromUnstructured(apex), client.FieldOwner("serin")); err != nil {
		t.Fatal(err)
	}
	applied := &corev1.Service{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "web-apex"}, applied); err != nil {
		t.Fatal(err)
	}
	if passes(applied) || pred.Create(event.CreateEvent{Object: applied}) {
		t.Error("the event of Serin's own apply starts a reconcile")
	}
	// And a workload's.
	primary := &unstructured.Unstructured{}
	primary.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	primary.SetNamespace("apps")
	primary.SetName("web-primary")
	if err := writer.Apply(ctx, client.ApplyConfigurationFromUnstructured(primary), client.FieldOwner("serin")); err != nil {
		t.Fatal(err)
	}
	appliedPrimary := &appsv1.Deployment{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "web-primary"}, appliedPrimary); err != nil {
		t.Fatal(err)
	}
	if appliedPrimary.ResourceVersion == "" || pred.Create(event.CreateEvent{Object: appliedPrimary}) {
		t.Error("the event of Serin's own unstructured apply starts a reconcile")
	}
	if !pred.Create(event.CreateEvent{Object: rolled}) {
		t.Error("the creation of an object another writer changed is skipped")
	}

	// A deletion passes, and forgets the object.
	if !pred.Delete(event.DeleteEvent{Object: applied}) {
		t.Error("a deletion is skipped")
	}
	if writes.Current(applied) {
		t.Error("a deleted object is still remembered")
	}
}
