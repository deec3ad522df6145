package packaging_test

import (
	"io/fs"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kustomizations lists every directory under the given roots (relative to
// the repository root) that holds a kustomization.yaml or .yml.
func kustomizations(t *testing.T, roots ...string) []string {
	t.Helper()
	var dirs []string
	for _, root := range roots {
		err := filepath.WalkDir(filepath.Join(repoRoot, root), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (d.Name() == "kustomization.yaml" || d.Name() == "kustomization.yml") {
				rel, err := filepath.Rel(repoRoot, filepath.Dir(path))
				if err != nil {
					return err
				}
				dirs = append(dirs, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

var providers = []string{"istio", "contour", "nginx", "gatewayapi", "kubernetes"}

func TestKustomize_EveryKustomizationBuilds(t *testing.T) {
	dirs := kustomizations(t, "kustomize", "artifacts")
	// The install paths, the example and the artifacts they are made of.
	NewWithT(t).Expect(len(dirs)).To(BeNumerically(">=", 23), "%v", dirs)
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			NewWithT(t).Expect(kustomizeBuild(t, dir)).NotTo(BeEmpty())
		})
	}
}

func TestKustomize_Base(t *testing.T) {
	g := NewWithT(t)
	objs := kustomizeBuild(t, "kustomize/base")

	for _, crd := range []string{"canaries.serin.dev", "metrictemplates.serin.dev", "alertproviders.serin.dev"} {
		g.Expect(find(objs, "CustomResourceDefinition", crd)).NotTo(BeNil(), crd)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace":
			g.Expect(o.GetNamespace()).To(BeEmpty(), "%s %s", o.GetKind(), o.GetName())
		default:
			g.Expect(o.GetNamespace()).To(Equal("serin-system"), "%s %s", o.GetKind(), o.GetName())
		}
	}
	// No router permissions without an overlay that asks for them; the
	// aggregated roles have no binding (the built-in roles take them in).
	g.Expect(names(ofKind(objs, "ClusterRole"))).To(ConsistOf("serin", "serin-aggregate-to-view", "serin-aggregate-to-edit"))
	g.Expect(ofKind(objs, "ClusterRoleBinding")).To(HaveLen(1))
	g.Expect(find(objs, "ClusterRole", "serin-aggregate-to-view").GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-view", "true"))
	g.Expect(find(objs, "ClusterRole", "serin-aggregate-to-edit").GetLabels()).To(And(
		HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-edit", "true"),
		HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-admin", "true"),
	))

	binding := find(objs, "ClusterRoleBinding", "serin")
	g.Expect(binding).NotTo(BeNil())
	g.Expect(binding.Object["subjects"]).To(ConsistOf(map[string]any{"kind": "ServiceAccount", "name": "serin", "namespace": "serin-system"}))
	g.Expect(find(objs, "Role", "serin-leader-election")).NotTo(BeNil())

	deploy := find(objs, "Deployment", "serin")
	c := serinContainer(t, deploy)
	g.Expect(c["image"]).To(Equal("ghcr.io/serin-dev/serin:latest"))
	g.Expect(args(t, deploy)).To(ContainElements("--health-addr=:9440", "--metrics-addr=:8080", "--enable-leader-election=true"))
	g.Expect(args(t, deploy)).NotTo(ContainElement(HavePrefix("--provider=")), "the base keeps the controller's default router")
	assertHardened(g, deploy)
}

// assertHardened checks the pod and container security settings and the
// probes of the controller's Deployment.
func assertHardened(g Gomega, deploy *unstructured.Unstructured) {
	podSC, _, _ := unstructured.NestedMap(deploy.Object, "spec", "template", "spec", "securityContext")
	g.Expect(podSC).To(HaveKeyWithValue("runAsNonRoot", true))
	g.Expect(podSC).To(HaveKeyWithValue("seccompProfile", map[string]any{"type": "RuntimeDefault"}))
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	g.Expect(c["securityContext"]).To(Equal(map[string]any{
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem":   true,
		"capabilities":             map[string]any{"drop": []any{"ALL"}},
	}))
	resources, _, _ := unstructured.NestedMap(c, "resources")
	g.Expect(resources).To(HaveKey("requests"))
	g.Expect(resources).To(HaveKey("limits"))
	// The probes hit what --health-addr serves.
	g.Expect(c["ports"]).To(ContainElement(map[string]any{"name": "healthz", "containerPort": int64(9440), "protocol": "TCP"}))
	g.Expect(c["livenessProbe"]).To(Equal(map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": "healthz"}}))
	g.Expect(c["readinessProbe"]).To(Equal(map[string]any{"httpGet": map[string]any{"path": "/readyz", "port": "healthz"}}))
}

func TestKustomize_ProviderOverlays(t *testing.T) {
	routerGroups := map[string]string{
		"istio":      "networking.istio.io",
		"contour":    "projectcontour.io",
		"nginx":      "networking.k8s.io",
		"gatewayapi": "gateway.networking.k8s.io",
	}
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			g := NewWithT(t)
			objs := kustomizeBuild(t, "kustomize/"+p)
			deploy := find(objs, "Deployment", "serin")
			g.Expect(args(t, deploy)).To(ContainElement("--provider=" + p))
			g.Expect(args(t, deploy)).To(ContainElement(HavePrefix("--metrics-server=http://")))
			assertHardened(g, deploy)

			for other := range routerGroups {
				role, binding := find(objs, "ClusterRole", "serin-"+other), find(objs, "ClusterRoleBinding", "serin-"+other)
				if other != p {
					g.Expect(role).To(BeNil(), "%s overlay grants %s", p, other)
					g.Expect(binding).To(BeNil(), "%s overlay binds %s", p, other)
					continue
				}
				g.Expect(role).NotTo(BeNil())
				g.Expect(binding).NotTo(BeNil())
				g.Expect(binding.Object["roleRef"]).To(HaveKeyWithValue("name", "serin-"+p))
				g.Expect(binding.Object["subjects"]).To(ConsistOf(HaveKeyWithValue("name", "serin")))
				rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
				g.Expect(rules).To(ConsistOf(HaveKeyWithValue("apiGroups", []any{routerGroups[p]})))
			}
		})
	}
}

func TestKustomize_NamespacedRBAC(t *testing.T) {
	g := NewWithT(t)
	objs := kustomizeBuild(t, "artifacts/rbac/namespaced")
	g.Expect(ofKind(objs, "ClusterRole")).To(BeEmpty())
	g.Expect(ofKind(objs, "ClusterRoleBinding")).To(BeEmpty())
	role := find(objs, "Role", "serin")
	g.Expect(role).NotTo(BeNil())
	cluster := find(kustomizeBuild(t, "artifacts/rbac"), "ClusterRole", "serin")
	g.Expect(role.Object["rules"]).To(Equal(cluster.Object["rules"]), "the namespaced Role grants what the ClusterRole does")
	g.Expect(find(objs, "RoleBinding", "serin")).NotTo(BeNil())
	g.Expect(find(objs, "Role", "serin-leader-election")).NotTo(BeNil())
}

// exampleAnalysis returns the namespace and spec.analysis of the example's Canary in an overlay.
func exampleAnalysis(t *testing.T, overlay string) (string, map[string]any) {
	t.Helper()
	objs := kustomizeBuild(t, "kustomize/example/"+overlay)
	canary := find(objs, "Canary", "podinfo")
	if canary == nil {
		t.Fatalf("%s: no Canary podinfo", overlay)
	}
	a, _, err := unstructured.NestedMap(canary.Object, "spec", "analysis")
	if err != nil {
		t.Fatal(err)
	}
	g := NewWithT(t)
	g.Expect(find(objs, "Service", "podinfo")).To(BeNil(), "Serin generates the Services")
	g.Expect(find(objs, "MetricTemplate", "error-rate")).NotTo(BeNil())
	// A replica count applied by Flux or Argo CD would scale the target
	// back up after Serin scaled it to zero; the autoscaler sizes it.
	g.Expect(find(objs, "Deployment", "podinfo").Object["spec"]).NotTo(HaveKey("replicas"))
	g.Expect(canary.Object["spec"]).To(HaveKeyWithValue("autoscalerRef", HaveKeyWithValue("name", "podinfo")))
	g.Expect(find(objs, "HorizontalPodAutoscaler", "podinfo")).NotTo(BeNil())
	return canary.GetNamespace(), a
}

func webhookTypes(a map[string]any) []string {
	var types []string
	hooks, _ := a["webhooks"].([]any)
	for _, h := range hooks {
		types = append(types, h.(map[string]any)["type"].(string))
	}
	return types
}

func TestKustomize_Example(t *testing.T) {
	g := NewWithT(t)
	ns, base := exampleAnalysis(t, "base")
	g.Expect(ns).To(BeEmpty())
	g.Expect(base["interval"]).To(Equal("1m"))

	ns, staging := exampleAnalysis(t, "staging")
	g.Expect(ns).To(Equal("podinfo-staging"))
	g.Expect(staging["interval"]).To(Equal("15s"))
	g.Expect(staging["threshold"]).To(BeNumerically(">", base["threshold"]))
	g.Expect(staging["metrics"].([]any)[0]).To(HaveKeyWithValue("thresholdRange", map[string]any{"min": int64(95)}))
	g.Expect(webhookTypes(staging)).NotTo(ContainElement("confirm-promotion"))

	ns, production := exampleAnalysis(t, "production")
	g.Expect(ns).To(Equal("podinfo-production"))
	g.Expect(production["interval"]).To(Equal("1m"))
	g.Expect(production["stepWeight"]).To(BeNumerically("<", base["stepWeight"]))
	g.Expect(production["maxWeight"]).To(BeNumerically(">", base["maxWeight"]))
	g.Expect(production["threshold"]).To(BeNumerically("<", base["threshold"]))
	g.Expect(production["metrics"].([]any)[0]).To(HaveKeyWithValue("thresholdRange", map[string]any{"min": 99.9}))
	g.Expect(webhookTypes(production)).To(ContainElement("confirm-promotion"))
}

func TestKustomize_NamespacedInstall(t *testing.T) {
	g := NewWithT(t)
	objs := kustomizeBuild(t, "kustomize/namespaced")
	g.Expect(ofKind(objs, "ClusterRole")).To(BeEmpty())
	g.Expect(ofKind(objs, "ClusterRoleBinding")).To(BeEmpty())
	g.Expect(ofKind(objs, "Namespace")).To(BeEmpty())
	g.Expect(ofKind(objs, "CustomResourceDefinition")).To(BeEmpty())
	for _, o := range objs {
		g.Expect(o.GetNamespace()).To(Equal("apps"), "%s %s", o.GetKind(), o.GetName())
	}
	for _, name := range []string{"serin", "serin-istio", "serin-leader-election"} {
		g.Expect(find(objs, "Role", name)).NotTo(BeNil(), name)
		binding := find(objs, "RoleBinding", name)
		g.Expect(binding).NotTo(BeNil(), name)
		g.Expect(binding.Object["subjects"]).To(ConsistOf(map[string]any{"kind": "ServiceAccount", "name": "serin", "namespace": "apps"}), name)
	}
	g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElements("--watch-namespace=apps", "--provider=istio"))
}

// names returns the names of objs.
func names(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}
