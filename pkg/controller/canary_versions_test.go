package controller

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestCanaryVersions(t *testing.T) {
	var v canaryVersions
	canary := func(rv string) *serinv1.Canary {
		return &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: rv}}
	}
	if v.current(canary("1")) {
		t.Error("a Canary never read around the cache is current")
	}
	v.seen(canary("1"))
	if !v.current(canary("1")) {
		t.Error("the version read around the cache is not current")
	}

	// A patch returned version 2: the cache at 1 is behind, at 2 current.
	v.record(canary("2"), nil)
	if v.current(canary("1")) || !v.current(canary("2")) {
		t.Error("after a patch to 2, want 1 stale and 2 current")
	}
	// Other kinds are not Canaries.
	v.record(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: "3"}}, nil)
	if !v.current(canary("2")) {
		t.Error("a Service patch changed the Canary's version")
	}
	// A failed patch leaves the server's version unknown.
	v.record(canary("2"), errors.New("conflict"))
	if v.current(canary("2")) {
		t.Error("after a failed patch the cached Canary is still current")
	}
	v.seen(canary("4"))
	v.forget(types.NamespacedName{Namespace: "apps", Name: "web"})
	if v.current(canary("4")) {
		t.Error("a forgotten Canary is current")
	}
}
