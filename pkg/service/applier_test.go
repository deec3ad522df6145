package service

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/serin-dev/serin/pkg/versions"
)

// staleCache is an informer cache that holds whatever Service it was last
// given.
type staleCache struct{ svc *corev1.Service }

func (s *staleCache) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s.svc.DeepCopyInto(obj.(*corev1.Service))
	return nil
}

func (s *staleCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

// The controller tests prove the apex switch against the apiserver; this
// one counts when ApplyVerified reads around the cache.
func TestApplyVerifiedReadsAroundAStaleCache(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var serverGets, applies int
	server := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			serverGets++
			return c.Get(ctx, key, obj, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies++
			return c.Apply(ctx, obj, opts...)
		},
	}).Build()
	c := canary(nil)
	if err := server.Apply(ctx, Desired(c, RoleApex, sel, false, nil), client.FieldOwner("serin")); err != nil {
		t.Fatal(err)
	}
	applies = 0
	stored := &corev1.Service{}
	if err := server.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "web"}, stored); err != nil {
		t.Fatal(err)
	}
	serverGets = 0
	cache := &staleCache{svc: stored.DeepCopy()}
	a := &Applier{Reader: cache, Client: server, FieldManager: "serin", Versions: versions.New(scheme)}

	selects := func(s *corev1.Service) string { return s.Spec.Selector[sel.Key] }
	steps := []struct {
		name         string
		toCanary     bool
		wantSelector string
		wantGets     int
		wantApplies  int
		refreshCache bool
	}{
		// Never read by this Applier: the cache is not trusted.
		{name: "first look", toCanary: false, wantSelector: "web-primary", wantGets: 1},
		// The cache holds the version read: no request.
		{name: "cache current", toCanary: false, wantSelector: "web-primary", wantGets: 1},
		// A switch is written; the response tells where it points.
		{name: "switch", toCanary: true, wantSelector: "web", wantGets: 1, wantApplies: 1},
		// The cache still has the old version: read around it, and find
		// the switch done.
		{name: "stale cache", toCanary: true, wantSelector: "web", wantGets: 2, wantApplies: 1, refreshCache: true},
		// The cache caught up with the read: no request.
		{name: "cache caught up", toCanary: true, wantSelector: "web", wantGets: 2, wantApplies: 1},
	}
	for _, step := range steps {
		got, err := a.ApplyVerified(ctx, Desired(c, RoleApex, sel, step.toCanary, nil), server)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if selects(got) != step.wantSelector || serverGets != step.wantGets || applies != step.wantApplies {
			t.Errorf("%s: selects %q after %d reads around the cache and %d applies; want %q, %d, %d",
				step.name, selects(got), serverGets, applies, step.wantSelector, step.wantGets, step.wantApplies)
		}
		if step.refreshCache {
			if err := server.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "web"}, cache.svc); err != nil {
				t.Fatal(err)
			}
			serverGets--
		}
	}
}
