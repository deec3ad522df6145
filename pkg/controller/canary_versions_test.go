package controller

import (
	"testing"

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

	v.seen(canary("4"))
	v.forget(types.NamespacedName{Namespace: "apps", Name: "web"})
	if v.current(canary("4")) {
		t.Error("a forgotten Canary is current")
	}
}
