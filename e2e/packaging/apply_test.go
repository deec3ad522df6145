package packaging_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// notInstalledKinds have no CRD in the test cluster: the Prometheus
// Operator's CRDs do not ship in any Go module this repository requires,
// so the chart's PodMonitor, ServiceMonitor and PrometheusRule are checked
// by the render tests only (and the rules by promtool).
var notInstalledKinds = map[string]bool{"PodMonitor": true, "ServiceMonitor": true, "PrometheusRule": true}

// applyObjects server-side applies objs as the admin. Namespaces they use
// are created for real first, since a dry-run Namespace does not make its
// objects admissible. With dryRun the apiserver validates, defaults and
// admits everything (OpenAPI schemas, CEL rules, RBAC escalation checks)
// but stores nothing, so renderings that share names do not collide.
func applyObjects(ctx context.Context, objs []*unstructured.Unstructured, dryRun bool) error {
	for _, o := range objs {
		ns := o.GetNamespace()
		if o.GetKind() == "Namespace" {
			ns = o.GetName()
		}
		if ns == "" {
			continue
		}
		err := adminClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	for _, o := range objs {
		if notInstalledKinds[o.GetKind()] {
			continue
		}
		o = o.DeepCopy()
		namespaced, err := adminClient.IsObjectNamespaced(o)
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if namespaced && o.GetNamespace() == "" {
			// As kubectl apply without -n would.
			o.SetNamespace(metav1.NamespaceDefault)
		}
		opts := []client.ApplyOption{client.FieldOwner("packaging-test"), client.ForceOwnership}
		if dryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := adminClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), opts...); err != nil {
			return fmt.Errorf("applying %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

func TestApply_EveryRenderingIsAccepted(t *testing.T) {
	cluster(t)
	renderings := map[string][]*unstructured.Unstructured{}
	for _, dir := range kustomizations(t, "kustomize", "artifacts/rbac/namespaced") {
		renderings["kustomize "+dir] = kustomizeBuild(t, dir)
	}
	for name, values := range helmCases {
		renderings["helm "+name] = mustRender(t, values)
	}
	for name, objs := range renderings {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(applyObjects(t.Context(), objs, true)).To(Succeed())
		})
	}

	// The dry run validates for real: an analysis the CRD forbids is refused.
	t.Run("an invalid Canary is rejected", func(t *testing.T) {
		g := NewWithT(t)
		objs := kustomizeBuild(t, "kustomize/example/staging")
		canary := find(objs, "Canary", "podinfo")
		g.Expect(unstructured.SetNestedField(canary.Object, "0s", "spec", "analysis", "interval")).To(Succeed())
		err := applyObjects(t.Context(), []*unstructured.Unstructured{canary}, true)
		g.Expect(err).To(MatchError(ContainSubstring("interval must be a positive duration")))
	})
}
