package packaging_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	chartDir = repoRoot + "/charts/serin"
	// releaseNamespace is where the test renderings install Serin.
	releaseNamespace = "serin-helm"
)

// renderChart renders the chart as `helm template serin charts/serin
// --namespace serin-helm -f <values>` would, validating the values against
// values.schema.json first. The CRDs in crds/ are not templates and are
// not part of the result.
func renderChart(valuesYAML string) ([]*unstructured.Unstructured, error) {
	return renderChartIn(releaseNamespace, valuesYAML)
}

// renderChartIn is renderChart for a release in namespace.
func renderChartIn(namespace, valuesYAML string) ([]*unstructured.Unstructured, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(valuesYAML), &vals); err != nil {
		return nil, err
	}
	renderValues, err := chartutil.ToRenderValues(chrt, vals,
		chartutil.ReleaseOptions{Name: "serin", Namespace: namespace, IsInstall: true, Revision: 1},
		chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	// Strict: a template that reads a value the chart does not define fails.
	rendered, err := engine.Engine{Strict: true}.Render(chrt, renderValues)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		docs, err := decodeYAML([]byte(rendered[name]))
		if err != nil {
			return nil, err
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

func mustRender(t *testing.T, valuesYAML string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(valuesYAML)
	if err != nil {
		t.Fatalf("rendering the chart with %q: %v", valuesYAML, err)
	}
	return objs
}

// helmCases are the default values and one non-default set per option
// group; the apply test installs each of them too.
var helmCases = map[string]string{
	"defaults": "",
	"provider": `
provider: istio
metricsServer: http://prometheus.istio-system:9090
`,
	"all routers": `
rbac: {routers: all}
`,
	"namespaced": `
namespaced: true
watchNamespace: team-a
provider: contour
`,
	"leader election off": `
leaderElection: {enabled: false}
`,
	"shared namespaces": `
sharedNamespaces: [observability, platform]
`,
	"namespaced shared": `
namespaced: true
watchNamespace: team-a
sharedNamespaces: [observability, team-a]
`,
	"no aggregated roles": `
rbac: {aggregateClusterRoles: false}
`,
	"logging": `
log: {level: debug, encoding: console}
`,
	"scheduling": `
resources:
  requests: {cpu: 250m, memory: 128Mi}
  limits: {cpu: "2", memory: 1Gi}
nodeSelector: {kubernetes.io/os: linux}
tolerations:
  - {key: dedicated, operator: Equal, value: serin, effect: NoSchedule}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}
`,
	"monitoring": `
podMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}
serviceMonitor: {enabled: true}
prometheusRule: {enabled: true, labels: {release: prometheus}}
`,
	"flags": `
extraArgs: ["--concurrent=8"]
noCrossNamespaceRefs: true
image: {repository: registry.example.com/serin, tag: v1.2.3, pullPolicy: Always}
`,
}

func TestHelm_Defaults(t *testing.T) {
	g := NewWithT(t)
	objs := mustRender(t, helmCases["defaults"])
	deploy := find(objs, "Deployment", "serin")
	g.Expect(deploy.GetNamespace()).To(Equal(releaseNamespace))
	c := serinContainer(t, deploy)
	g.Expect(c["image"]).To(Equal("ghcr.io/serin-dev/serin:latest"))
	g.Expect(args(t, deploy)).To(ContainElements(
		"--provider=kubernetes", "--metrics-server=http://prometheus:9090",
		"--log-level=info", "--log-encoding=json", "--enable-leader-election=true",
		"--health-addr=:9440", "--metrics-addr=:8080",
	))
	g.Expect(args(t, deploy)).NotTo(ContainElement(HavePrefix("--watch-namespace")))
	g.Expect(args(t, deploy)).NotTo(ContainElement("--no-cross-namespace-refs"))
	assertHardened(g, deploy)
	g.Expect(c["resources"]).To(Equal(map[string]any{
		"requests": map[string]any{"cpu": "100m", "memory": "64Mi"},
		"limits":   map[string]any{"cpu": "1", "memory": "512Mi"},
	}))

	// The kubernetes provider routes with Services only: no router RBAC.
	// The aggregated roles add Serin's kinds to view, edit and admin.
	g.Expect(names(ofKind(objs, "ClusterRole"))).To(ConsistOf("serin", "serin-aggregate-to-view", "serin-aggregate-to-edit"))
	g.Expect(find(objs, "ClusterRole", "serin-aggregate-to-edit").Object["rules"]).To(Equal(find(kustomizeBuild(t, "kustomize/base"), "ClusterRole", "serin-aggregate-to-edit").Object["rules"]))
	g.Expect(find(objs, "ClusterRole", "serin-aggregate-to-view").Object["rules"]).To(Equal(find(kustomizeBuild(t, "kustomize/base"), "ClusterRole", "serin-aggregate-to-view").Object["rules"]))
	g.Expect(find(objs, "ClusterRoleBinding", "serin")).NotTo(BeNil())
	g.Expect(find(objs, "Role", "serin-leader-election")).NotTo(BeNil())
	g.Expect(find(objs, "ServiceAccount", "serin")).NotTo(BeNil())
	g.Expect(find(objs, "Service", "serin-metrics")).NotTo(BeNil())
	g.Expect(ofKind(objs, "PodMonitor")).To(BeEmpty())
	g.Expect(ofKind(objs, "ServiceMonitor")).To(BeEmpty())

	// The chart grants what the kustomize install grants.
	cluster := find(kustomizeBuild(t, "artifacts/rbac"), "ClusterRole", "serin")
	g.Expect(find(objs, "ClusterRole", "serin").Object["rules"]).To(Equal(cluster.Object["rules"]))
}

func TestHelm_Options(t *testing.T) {
	t.Run("provider", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["provider"])
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElements("--provider=istio", "--metrics-server=http://prometheus.istio-system:9090"))
		role := find(objs, "ClusterRole", "serin-istio")
		g.Expect(role).NotTo(BeNil())
		g.Expect(role.Object["rules"]).To(Equal(find(kustomizeBuild(t, "artifacts/rbac/routers/istio"), "ClusterRole", "serin-istio").Object["rules"]))
		g.Expect(find(objs, "ClusterRoleBinding", "serin-istio")).NotTo(BeNil())
		for _, other := range []string{"contour", "nginx", "gatewayapi"} {
			g.Expect(find(objs, "ClusterRole", "serin-"+other)).To(BeNil(), other)
		}
	})
	t.Run("gatewayapi:v1 grants the gatewayapi rules", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, "provider: gatewayapi:v1")
		g.Expect(find(objs, "ClusterRole", "serin-gatewayapi")).NotTo(BeNil())
	})
	t.Run("all routers", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["all routers"])
		for _, p := range []string{"istio", "contour", "nginx", "gatewayapi"} {
			g.Expect(find(objs, "ClusterRole", "serin-"+p)).NotTo(BeNil(), p)
			g.Expect(find(objs, "ClusterRoleBinding", "serin-"+p)).NotTo(BeNil(), p)
		}
	})
	t.Run("namespaced", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["namespaced"])
		g.Expect(ofKind(objs, "ClusterRole")).To(BeEmpty())
		g.Expect(ofKind(objs, "ClusterRoleBinding")).To(BeEmpty())
		for _, name := range []string{"serin", "serin-contour"} {
			role, binding := find(objs, "Role", name), find(objs, "RoleBinding", name)
			g.Expect(role).NotTo(BeNil(), name)
			g.Expect(role.GetNamespace()).To(Equal("team-a"))
			g.Expect(binding.GetNamespace()).To(Equal("team-a"))
			g.Expect(binding.Object["subjects"]).To(ConsistOf(map[string]any{"kind": "ServiceAccount", "name": "serin", "namespace": releaseNamespace}))
		}
		g.Expect(find(objs, "Role", "serin-leader-election").GetNamespace()).To(Equal(releaseNamespace))
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--watch-namespace=team-a"))
	})
	t.Run("namespaced defaults to the release namespace", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, "namespaced: true")
		g.Expect(find(objs, "Role", "serin").GetNamespace()).To(Equal(releaseNamespace))
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--watch-namespace=" + releaseNamespace))
	})
	t.Run("shared namespaces", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["shared namespaces"])
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--shared-namespaces=observability,platform"))
		// Cluster-wide, the ClusterRole reads them already.
		g.Expect(ofKind(objs, "Role")).To(ConsistOf(HaveField("Object", HaveKeyWithValue("metadata", HaveKeyWithValue("name", "serin-leader-election")))))
		g.Expect(args(t, find(mustRender(t, ""), "Deployment", "serin"))).NotTo(ContainElement(HavePrefix("--shared-namespaces")))
	})
	t.Run("namespaced with shared namespaces", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["namespaced shared"])
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--shared-namespaces=observability,team-a"))
		// Read-only Roles where the templates live; the watched namespace
		// has its Role already.
		var shared []string
		for _, r := range ofKind(objs, "Role") {
			if r.GetName() == "serin-shared" {
				shared = append(shared, r.GetNamespace())
				g.Expect(find(objs, "RoleBinding", "serin-shared")).NotTo(BeNil())
			}
		}
		g.Expect(shared).To(ConsistOf("observability"))
		// Without sharedNamespaces, the controller's default: its own
		// namespace, when it is not the watched one.
		objs = mustRender(t, helmCases["namespaced"])
		role := find(objs, "Role", "serin-shared")
		g.Expect(role).NotTo(BeNil())
		g.Expect(role.GetNamespace()).To(Equal(releaseNamespace))
		g.Expect(find(mustRender(t, "namespaced: true"), "Role", "serin-shared")).To(BeNil())
	})
	t.Run("aggregated roles off", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(names(ofKind(mustRender(t, helmCases["no aggregated roles"]), "ClusterRole"))).To(ConsistOf("serin"))
	})
	t.Run("leader election off", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["leader election off"])
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--enable-leader-election=false"))
		g.Expect(find(objs, "Role", "serin-leader-election")).To(BeNil())
	})
	t.Run("logging", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["logging"])
		g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElements("--log-level=debug", "--log-encoding=console"))
	})
	t.Run("scheduling", func(t *testing.T) {
		g := NewWithT(t)
		deploy := find(mustRender(t, helmCases["scheduling"]), "Deployment", "serin")
		g.Expect(serinContainer(t, deploy)["resources"]).To(Equal(map[string]any{
			"requests": map[string]any{"cpu": "250m", "memory": "128Mi"},
			"limits":   map[string]any{"cpu": "2", "memory": "1Gi"},
		}))
		spec, _, _ := unstructured.NestedMap(deploy.Object, "spec", "template", "spec")
		g.Expect(spec["nodeSelector"]).To(Equal(map[string]any{"kubernetes.io/os": "linux"}))
		g.Expect(spec["tolerations"]).To(HaveLen(1))
		g.Expect(spec["affinity"]).To(HaveKey("nodeAffinity"))
	})
	t.Run("monitoring", func(t *testing.T) {
		g := NewWithT(t)
		objs := mustRender(t, helmCases["monitoring"])
		pm := find(objs, "PodMonitor", "serin")
		g.Expect(pm).NotTo(BeNil())
		g.Expect(pm.GetAPIVersion()).To(Equal("monitoring.coreos.com/v1"))
		g.Expect(pm.GetLabels()).To(HaveKeyWithValue("release", "prometheus"))
		g.Expect(pm.Object["spec"]).To(HaveKeyWithValue("podMetricsEndpoints", ConsistOf(HaveKeyWithValue("interval", "15s"))))
		sm := find(objs, "ServiceMonitor", "serin")
		g.Expect(sm).NotTo(BeNil())
		g.Expect(sm.Object["spec"]).To(HaveKeyWithValue("endpoints", ConsistOf(HaveKeyWithValue("port", "http-metrics"))))
		// The ServiceMonitor's port is the metrics Service's.
		svc := find(objs, "Service", "serin-metrics")
		g.Expect(svc.Object["spec"]).To(HaveKeyWithValue("ports", ConsistOf(HaveKeyWithValue("name", "http-metrics"))))
		// The PrometheusRule holds the rules file as it is.
		pr := find(objs, "PrometheusRule", "serin-flagger-compat")
		g.Expect(pr).NotTo(BeNil())
		g.Expect(pr.GetLabels()).To(HaveKeyWithValue("release", "prometheus"))
		raw, err := os.ReadFile(filepath.Join(repoRoot, "charts", "serin", "files", "flagger-rules.yaml"))
		g.Expect(err).NotTo(HaveOccurred())
		var want map[string]any
		g.Expect(yaml.Unmarshal(raw, &want)).To(Succeed())
		g.Expect(pr.Object["spec"]).To(Equal(want))
	})
	t.Run("flags", func(t *testing.T) {
		g := NewWithT(t)
		deploy := find(mustRender(t, helmCases["flags"]), "Deployment", "serin")
		g.Expect(args(t, deploy)).To(ContainElements("--concurrent=8", "--no-cross-namespace-refs"))
		c := serinContainer(t, deploy)
		g.Expect(c["image"]).To(Equal("registry.example.com/serin:v1.2.3"))
		g.Expect(c["imagePullPolicy"]).To(Equal("Always"))
	})
}

func TestHelm_SchemaRejectsBadValues(t *testing.T) {
	for name, values := range map[string]string{
		"unknown provider":                  "provider: foo",
		"resources as a string":             "resources: 500m",
		"unknown top-level key":             "replicas: 2",
		"unknown nested key":                "podMonitor: {enabled: true, scrapeInterval: 10s}",
		"unknown log level":                 "log: {level: verbose}",
		"unknown log encoding":              "log: {encoding: text}",
		"namespaced as a string":            `namespaced: "yes"`,
		"extraArgs as a string":             "extraArgs: --concurrent=8",
		"metricsServer without URL":         "metricsServer: prometheus:9090",
		"unknown rbac.routers":              "rbac: {routers: some}",
		"sharedNamespaces as a string":      "sharedNamespaces: observability",
		"sharedNamespaces not a name":       "sharedNamespaces: [Observability]",
		"aggregateClusterRoles as a string": `rbac: {aggregateClusterRoles: "no"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderChart(values)
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring("values don't meet the specifications of the schema")))
		})
	}
}

func TestHelm_CRDsMatchArtifacts(t *testing.T) {
	g := NewWithT(t)
	want, err := filepath.Glob(filepath.Join(repoRoot, "artifacts/crds/*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	got, err := filepath.Glob(filepath.Join(chartDir, "crds/*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	// Helm installs every file of crds/ as a CRD: nothing else may be there.
	base := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	g.Expect(base(want)).NotTo(BeEmpty())
	g.Expect(base(got)).To(Equal(base(want)), "charts/serin/crds holds the same files as artifacts/crds")
	for _, name := range base(want) {
		a, err := os.ReadFile(filepath.Join(repoRoot, "artifacts/crds", name))
		g.Expect(err).NotTo(HaveOccurred())
		b, err := os.ReadFile(filepath.Join(chartDir, "crds", name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(b).To(Equal(a), "charts/serin/crds/%s differs from artifacts/crds/%s: run make generate", name, name)
	}
}
