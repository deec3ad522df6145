package testenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// requireBinaries fails (not skips) the test when the binaries are missing, so
// a misconfigured CI cannot pass by running nothing.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := testenv.BinDir(); err != nil {
		t.Fatal(err)
	}
}

// Two CRDs in one multi-document file, with a blank document and a
// non-CRD object that InstallCRDs must skip.
const widgetCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.serin.dev
spec:
  group: test.serin.dev
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.test.serin.dev
spec:
  group: test.serin.dev
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func TestAPIServerMode(t *testing.T) {
	requireBinaries(t)
	crdFile := filepath.Join(t.TempDir(), "crds.yaml")
	if err := os.WriteFile(crdFile, []byte(widgetCRDs), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{crdFile}})
	t.Logf("APIServer mode ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	client := kubernetes.NewForConfigOrDie(env.Config)
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if version.GitVersion != testenv.KubernetesVersion {
		t.Errorf("server version = %q, want %q", version.GitVersion, testenv.KubernetesVersion)
	}

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "demo"}, Data: map[string]string{"color": "blue"}}
	if _, err := client.CoreV1().ConfigMaps("demo").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A fresh client built only from the kubeconfig file proves that file
	// works as well as Config.
	kubeconfig, err := clientcmd.BuildConfigFromFlags("", env.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	fresh := kubernetes.NewForConfigOrDie(kubeconfig)
	got, err := fresh.CoreV1().ConfigMaps("demo").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["color"] != "blue" || got.UID == "" {
		t.Errorf("read back %+v", got)
	}

	// RBAC is enforced: an impersonated user without bindings is refused.
	anon := rest.CopyConfig(env.Config)
	anon.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	_, err = kubernetes.NewForConfigOrDie(anon).CoreV1().ConfigMaps("demo").Get(ctx, "settings", metav1.GetOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("unbound user reading a ConfigMap: err = %v, want forbidden", err)
	}

	// The CRDs are served, and their schema validation is active.
	dyn := dynamic.NewForConfigOrDie(env.Config)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "test.serin.dev", Version: "v1", Resource: "widgets"}).Namespace("demo")
	widget := func(size int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "test.serin.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w"},
			"spec":     map[string]any{"size": size},
		}}
	}
	if _, err := widgets.Create(ctx, widget(0), metav1.CreateOptions{}); err == nil {
		t.Error("creating a Widget with size 0 succeeded, want a validation error")
	}
	if _, err := widgets.Create(ctx, widget(3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gadgets := dyn.Resource(schema.GroupVersionResource{Group: "test.serin.dev", Version: "v1", Resource: "gadgets"})
	if _, err := gadgets.List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing gadgets: %v", err)
	}
}

func TestFullClusterDeploymentRollout(t *testing.T) {
	requireBinaries(t)
	g := NewWithT(t)
	start := time.Now()
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.Full, Nodes: 2})
	t.Logf("Full mode ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(env.Config)

	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nodes.Items).To(HaveLen(2))

	const ns = "default"
	labelsMap := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labelsMap},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labelsMap},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "example.com/app:v1",
				}}},
			},
		},
	}
	_, err = client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	rolledOut := func(image string) func(Gomega) {
		return func(g Gomega) {
			d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
			g.Expect(d.Status.Replicas).To(BeEquivalentTo(3))
			g.Expect(d.Status.UpdatedReplicas).To(BeEquivalentTo(3))
			g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(3))
			g.Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(3))

			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labelsMap).String()})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(3))
			for _, p := range pods.Items {
				g.Expect(p.Spec.NodeName).To(HavePrefix("kwok-node-"), "pod %s scheduled", p.Name)
				g.Expect(p.Spec.Containers[0].Image).To(Equal(image), "pod %s", p.Name)
				g.Expect(p.Status.PodIP).NotTo(BeEmpty(), "pod %s IP", p.Name)
				g.Expect(p.Status.ContainerStatuses).To(ConsistOf(HaveField("Image", image)), "pod %s", p.Name)
				g.Expect(p.Status.Conditions).To(ContainElement(And(
					HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))), "pod %s", p.Name)
			}

			sets, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labelsMap).String()})
			g.Expect(err).NotTo(HaveOccurred())
			for _, rs := range sets.Items {
				if rs.Spec.Template.Spec.Containers[0].Image != image {
					g.Expect(rs.Spec.Replicas).To(HaveValue(BeEquivalentTo(0)), "old ReplicaSet %s", rs.Name)
					g.Expect(rs.Status.Replicas).To(BeEquivalentTo(0), "old ReplicaSet %s", rs.Name)
				}
			}
		}
	}

	rollout := time.Now()
	g.Eventually(rolledOut("example.com/app:v1")).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("v1 ready in %v", time.Since(rollout).Round(time.Millisecond))

	d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	d.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
	_, err = client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	rollout = time.Now()
	g.Eventually(rolledOut("example.com/app:v2")).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("v2 rolled out in %v", time.Since(rollout).Round(time.Millisecond))

	sets, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labelsMap).String()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sets.Items).To(HaveLen(2), "one ReplicaSet per image")
}

func TestStopLeavesNoProcess(t *testing.T) {
	requireBinaries(t)
	env, err := testenv.Start(t.Context(), testenv.Options{Mode: testenv.APIServer})
	if err != nil {
		t.Fatal(err)
	}
	pids := env.PIDs()
	if len(pids) != 2 || pids["etcd"] == 0 || pids["kube-apiserver"] == 0 {
		t.Fatalf("PIDs() = %v, want etcd and kube-apiserver", pids)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("%s (pid %d) not running before Stop: %v", name, pid, err)
		}
	}
	for name, path := range env.Logs() {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("log of %s: %v", name, err)
		}
	}

	start := time.Now()
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(start).Round(time.Millisecond))
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) after Stop: kill(0) = %v, want ESRCH", name, pid, err)
		}
	}
	if _, err := os.Stat(env.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s after Stop: %v, want removed", env.Dir, err)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A component that dies during Start must fail Start with its log, rather
// than leave Start waiting for its timeout.
func TestStartReportsDyingComponent(t *testing.T) {
	// Start keeps a failed attempt's directory for inspection; put it where
	// the test cleans up.
	t.Setenv("TMPDIR", t.TempDir())
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		script := "#!/bin/sh\necho \"" + name + ": simulated crash\" >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	env, err := testenv.Start(t.Context(), testenv.Options{Mode: testenv.APIServer, BinDir: bin})
	if err == nil {
		_ = env.Stop()
		t.Fatal("Start succeeded with a crashing etcd")
	}
	if !strings.Contains(err.Error(), "etcd: simulated crash") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Start error lacks the component's exit and log tail: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Start took %v to notice the crash", d)
	}
}
