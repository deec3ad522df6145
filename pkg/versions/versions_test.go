package versions

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

func TestTracker(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	v := New(scheme)
	service := func(rv string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: rv}}
	}
	if v.Current(service("1")) {
		t.Error("an object never recorded is current")
	}
	v.Record(service("1"))
	if !v.Current(service("1")) {
		t.Error("the recorded version is not current")
	}
	if v.Current(service("2")) {
		t.Error("a later version is current")
	}

	v.RecordRef(Ref{Kind: corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), Namespace: "apps", Name: "web"}, "4")
	if !v.Current(service("4")) {
		t.Error("the version recorded by reference is not current")
	}
	// Another kind with the same name and version is another object.
	if v.Current(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: "4"}}) {
		t.Error("a ConfigMap is current at its Service's version")
	}
	v.Forget(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}})
	if v.Current(service("4")) {
		t.Error("a forgotten object is current")
	}
	// An empty version records nothing.
	v.Record(service(""))
	if v.Current(service("")) {
		t.Error("an empty version is current")
	}
}
