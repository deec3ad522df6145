package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestObjectVersions(t *testing.T) {
	v := newObjectVersions(testScheme(t))
	canary := func(rv string) *serinv1.Canary {
		return &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: rv}}
	}
	if v.current(canary("1")) {
		t.Error("a Canary never read around the cache is current")
	}
	v.record(canary("1"))
	if !v.current(canary("1")) {
		t.Error("the version read around the cache is not current")
	}

	v.record(canary("4"))
	// Another kind with the same name and version is another object.
	if v.current(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: "4"}}) {
		t.Error("a Service is current at its Canary's version")
	}
	v.forget(&serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}})
	if v.current(canary("4")) {
		t.Error("a forgotten Canary is current")
	}
}
