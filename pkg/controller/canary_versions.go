package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// canaryVersions remembers, per Canary, the resourceVersion this controller
// last wrote or read around the cache. A cached Canary at that version is
// current, so the reconcile needs no GET; any other version (the cache has
// not caught up, or someone else wrote since) is read around the cache.
// The first reconcile of each Canary in a process always reads around it.
type canaryVersions struct{ m sync.Map } // types.NamespacedName → string

func (v *canaryVersions) current(c *serinv1.Canary) bool {
	rv, ok := v.m.Load(types.NamespacedName{Namespace: c.Namespace, Name: c.Name})
	return ok && rv.(string) == c.ResourceVersion
}

func (v *canaryVersions) seen(c *serinv1.Canary) {
	v.m.Store(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, c.ResourceVersion)
}

func (v *canaryVersions) forget(key types.NamespacedName) { v.m.Delete(key) }
