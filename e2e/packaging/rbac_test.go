package packaging_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/controller"
)

// serviceAccount is the identity the kustomize install runs the controller
// as.
const serviceAccount = "system:serviceaccount:serin-system:serin"

// shardLabel keeps the Canaries of the RBAC tests, which run in parallel,
// apart.
const shardLabel = "packaging.serin.dev/shard"

// logs collects the log of every controller the tests run: controller-runtime
// and klog have one global logger each.
var (
	logs      = &syncBuffer{}
	logsSetUp sync.Once
)

func captureLogs() {
	logsSetUp.Do(func() {
		logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true))
		ctrl.SetLogger(logger)
		// client-go's reflectors log failed lists and watches through klog.
		klog.SetLogger(logger)
	})
}

const (
	release = 2 * time.Minute
	poll    = 250 * time.Millisecond
)

// rbacKinds are what the RBAC test installs from the istio overlay: the
// identity and its permissions, not the controller Deployment, which runs
// in the test process instead.
var rbacKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true,
	"ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
}

// forbiddenRecorder wraps a transport and remembers every request the
// apiserver refused with 403.
type forbiddenRecorder struct {
	mu       sync.Mutex
	requests []string
}

func (f *forbiddenRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusForbidden {
			f.mu.Lock()
			f.requests = append(f.requests, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery)
			f.mu.Unlock()
		}
		return resp, err
	})
}

func (f *forbiddenRecorder) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// syncBuffer is a log sink shared by the controller's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// asServiceAccount is the admin config impersonating a ServiceAccount, so
// every request is authorized by the installed RBAC.
func asServiceAccount(user string, recorder *forbiddenRecorder) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	if recorder != nil {
		cfg.Wrap(recorder.wrap)
	}
	return cfg
}

// controllerRun says how startController runs the controller.
type controllerRun struct {
	// user is the ServiceAccount impersonated.
	user string
	// namespace holds the leader election Lease.
	namespace string
	// watchNamespace restricts the controller to one namespace, as
	// --watch-namespace does.
	watchNamespace string
	// shard selects the Canaries served, as --watch-label-selector does.
	shard    labels.Selector
	provider serinv1.Provider
}

// startController runs the Canary controller in the test process as a
// ServiceAccount, with leader election and the cache settings cmd/serin
// uses, until the test ends.
func startController(t *testing.T, run controllerRun, recorder *forbiddenRecorder) {
	t.Helper()
	opts := ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		Client:                        controller.ClientOptions(),
		LeaderElection:                true,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionID:              "serin-leader-election",
		LeaderElectionNamespace:       run.namespace,
		LeaderElectionReleaseOnCancel: true,
		// Tests run one controller after the other in this process.
		Controller: ctrlconfig.Controller{SkipNameValidation: new(true)},
	}
	if run.watchNamespace != "" {
		opts.Cache.DefaultNamespaces = map[string]cache.Config{run.watchNamespace: {}}
	}
	if run.shard != nil {
		opts.Cache.ByObject = map[client.Object]cache.ByObject{&serinv1.Canary{}: {Label: run.shard}}
	}
	mgr, err := ctrl.NewManager(asServiceAccount(run.user, recorder), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := controller.Setup(ctx, mgr, controller.Config{DefaultProvider: run.provider}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// installRBAC applies, for real, the identity and permissions among objs.
func installRBAC(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var install []*unstructured.Unstructured
	for _, o := range objs {
		if rbacKinds[o.GetKind()] {
			install = append(install, o)
		}
	}
	if err := applyObjects(t.Context(), install, false); err != nil {
		t.Fatal(err)
	}
}

// observation is a Canary's phase and its kstatus when the phase was
// first seen.
type observation struct {
	Phase  serinv1.CanaryPhase
	Status status.Status
}

// observePhases watches the Canaries of ns and, for each, records the
// kstatus computed from the first version of the object in every new
// phase. The status is patched in two steps (conditions, then the rest),
// and the version that brings a new phase is the one where both agree.
func observePhases(t *testing.T, ns string) func(name string) []observation {
	t.Helper()
	w, err := adminClient.Watch(t.Context(), &serinv1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var (
		mu   sync.Mutex
		seen = map[string][]observation{}
		errs []error
	)
	go func() {
		for ev := range w.ResultChan() {
			c, ok := ev.Object.(*serinv1.Canary)
			if !ok || ev.Type == watch.Deleted || c.Status.Phase == "" {
				continue
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
			var res *status.Result
			if err == nil {
				res, err = status.Compute(&unstructured.Unstructured{Object: m})
			}
			mu.Lock()
			if err != nil {
				errs = append(errs, err)
			} else if obs := seen[c.Name]; len(obs) == 0 || obs[len(obs)-1].Phase != c.Status.Phase {
				seen[c.Name] = append(obs, observation{Phase: c.Status.Phase, Status: res.Status})
			}
			mu.Unlock()
		}
	}()
	return func(name string) []observation {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) > 0 {
			t.Errorf("computing kstatus: %v", errs)
		}
		return slices.Clone(seen[name])
	}
}

// kstatusOf computes the kstatus of a Canary as it is now.
func kstatusOf(g Gomega, ns, name string) status.Status {
	var c serinv1.Canary
	g.Expect(adminClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c)).To(Succeed())
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
	g.Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	g.Expect(err).NotTo(HaveOccurred())
	return res.Status
}

// phaseOf returns a function for Eventually that reads a Canary's phase.
// A refused request stops the wait at once: the release would only retry
// it until the timeout.
func phaseOf(ns, name string, forbidden *forbiddenRecorder) func() (serinv1.CanaryPhase, error) {
	return func() (serinv1.CanaryPhase, error) {
		if refused := forbidden.seen(); len(refused) > 0 {
			return "", StopTrying(fmt.Sprintf("the apiserver refused the controller: %v", refused))
		}
		var c serinv1.Canary
		err := adminClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c)
		return c.Status.Phase, err
	}
}

func newDeployment(ns, name, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

// newCanary is an Istio canary that shifts 50% in one step, at the
// shortest interval the CRD allows, and rolls back at the first failed
// check.
func newCanary(ns, name string, hooks ...serinv1.CanaryWebhook) *serinv1.Canary {
	return &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			Provider:  serinv1.ProviderIstio,
			TargetRef: serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service: serinv1.CanaryService{
				Port: 80, TargetPort: intstr.FromInt32(8080),
				Hosts: []string{name + ".example.com"},
			},
			Analysis: serinv1.CanaryAnalysis{Interval: "10s", Threshold: 1, StepWeight: 50, MaxWeight: 50, Webhooks: hooks},
		},
	}
}

func setImage(g Gomega, ns, name, image string) {
	var d appsv1.Deployment
	g.Expect(adminClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &d)).To(Succeed())
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	g.Expect(adminClient.Patch(context.Background(), &d, patch)).To(Succeed())
}

// TestRBAC_ControllerRunsAReleaseAsItsServiceAccount installs the RBAC of
// the istio overlay and runs the controller with exactly those
// permissions through a release and a rollback. A missing permission shows
// as a 403 from the apiserver (or a stuck release); kstatus must read each
// phase the way Flux and Argo CD health checks will.
func TestRBAC_ControllerRunsAReleaseAsItsServiceAccount(t *testing.T) {
	cluster(t)
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()

	overlay := kustomizeBuild(t, "kustomize/istio")
	g.Expect(find(overlay, "ClusterRoleBinding", "serin-istio")).NotTo(BeNil())
	installRBAC(t, overlay)

	// The impersonation is real: the ServiceAccount may not do what its
	// RBAC does not grant.
	probe, err := client.New(asServiceAccount(serviceAccount, nil), client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	err = probe.List(ctx, &corev1.NamespaceList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing namespaces as %s: %v", serviceAccount, err)

	t.Cleanup(func() {
		if t.Failed() {
			t.Log("controller log:\n" + logs.String())
		}
	})
	forbidden := &forbiddenRecorder{}
	// The cluster-wide controller serves only this test's Canaries: the
	// namespaced test runs at the same time.
	shard := labels.SelectorFromSet(labels.Set{shardLabel: "cluster-wide"})
	startController(t, controllerRun{user: serviceAccount, namespace: "serin-system", shard: shard, provider: serinv1.ProviderIstio}, forbidden)

	ns := "rbac-release"
	g.Expect(adminClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	t.Cleanup(func() {
		_ = adminClient.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	observed := observePhases(t, ns)

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	smoke := serinv1.CanaryWebhook{Name: "smoke", Type: serinv1.PreRolloutHook, URL: failing.URL + "/smoke"}

	// The released Canary uses every kind the controller touches: a
	// tracked ConfigMap, an autoscaler, and revertOnDeletion, which deletes
	// what it generated. Both Canaries run at once, to keep the test short.
	released := newDeployment(ns, "released", "example.com/app:v1")
	released.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
		ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}},
	}}
	releasedCanary := newCanary(ns, "released")
	releasedCanary.Labels = map[string]string{shardLabel: "cluster-wide"}
	releasedCanary.Spec.RevertOnDeletion = true
	releasedCanary.Spec.AutoscalerRef = &serinv1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "released"}
	rolledbackCanary := newCanary(ns, "rolledback", smoke)
	rolledbackCanary.Labels = map[string]string{shardLabel: "cluster-wide"}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"level": "info"}},
		&autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "released"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "released"},
				MinReplicas:    new(int32(1)),
				MaxReplicas:    2,
			},
		},
		released, releasedCanary,
		newDeployment(ns, "rolledback", "example.com/app:v1"), rolledbackCanary,
	} {
		g.Expect(adminClient.Create(ctx, o)).To(Succeed())
	}
	for _, name := range []string{"released", "rolledback"} {
		g.Eventually(phaseOf(ns, name, forbidden), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized), name)
		g.Expect(kstatusOf(g, ns, name)).To(Equal(status.CurrentStatus), name)
		setImage(g, ns, name, "example.com/app:v2")
	}

	g.Eventually(phaseOf(ns, "released", forbidden), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Eventually(phaseOf(ns, "rolledback", forbidden), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))

	t.Run("the release went through every phase and kstatus followed", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() []observation { return observed("released") }, 10*poll, poll).Should(Equal([]observation{
			{serinv1.CanaryPhaseInitializing, status.InProgressStatus},
			{serinv1.CanaryPhaseInitialized, status.CurrentStatus},
			{serinv1.CanaryPhaseProgressing, status.InProgressStatus},
			{serinv1.CanaryPhasePromoting, status.InProgressStatus},
			{serinv1.CanaryPhaseFinalising, status.InProgressStatus},
			{serinv1.CanaryPhaseSucceeded, status.CurrentStatus},
		}))
		g.Expect(kstatusOf(g, ns, "released")).To(Equal(status.CurrentStatus))
		var primary appsv1.Deployment
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "released-primary"}, &primary)).To(Succeed())
		g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/app:v2"))
		// The Istio router wrote its objects with the overlay's RBAC.
		vs := &unstructured.Unstructured{}
		vs.SetAPIVersion("networking.istio.io/v1")
		vs.SetKind("VirtualService")
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "released"}, vs)).To(Succeed())
	})

	t.Run("the rollback is Failed for kstatus", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() []observation { return observed("rolledback") }, 10*poll, poll).Should(Equal([]observation{
			{serinv1.CanaryPhaseInitializing, status.InProgressStatus},
			{serinv1.CanaryPhaseInitialized, status.CurrentStatus},
			{serinv1.CanaryPhaseProgressing, status.InProgressStatus},
			{serinv1.CanaryPhaseFailed, status.FailedStatus},
		}))
		g.Eventually(func() status.Status { return kstatusOf(g, ns, "rolledback") }, release, poll).Should(Equal(status.FailedStatus))
		var c serinv1.Canary
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rolledback"}, &c)).To(Succeed())
		g.Expect(conditions.IsStalled(&c)).To(BeTrue())
	})

	t.Run("revertOnDeletion removes what Serin generated", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings-primary"}, &corev1.ConfigMap{})).To(Succeed())
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "released-primary"}, &autoscalingv2.HorizontalPodAutoscaler{})).To(Succeed())
		g.Expect(adminClient.Delete(ctx, releasedCanary)).To(Succeed())
		g.Eventually(func() error {
			if refused := forbidden.seen(); len(refused) > 0 {
				return StopTrying(fmt.Sprintf("the apiserver refused the controller: %v", refused))
			}
			return adminClient.Get(ctx, client.ObjectKeyFromObject(releasedCanary), &serinv1.Canary{})
		}, release, poll).Should(MatchError(ContainSubstring("not found")))
		for _, o := range []client.Object{&appsv1.Deployment{}, &autoscalingv2.HorizontalPodAutoscaler{}, &corev1.Service{}} {
			err := adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "released-primary"}, o)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T released-primary: %v", o, err)
		}
		err := adminClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings-primary"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "ConfigMap settings-primary: %v", err)
	})

	t.Run("the controller was never refused", func(t *testing.T) {
		g := NewWithT(t)
		// Leader election held the Lease in serin-system as the
		// ServiceAccount.
		var lease unstructured.Unstructured
		lease.SetAPIVersion("coordination.k8s.io/v1")
		lease.SetKind("Lease")
		g.Expect(adminClient.Get(ctx, client.ObjectKey{Namespace: "serin-system", Name: "serin-leader-election"}, &lease)).To(Succeed())
		g.Expect(forbidden.seen()).To(BeEmpty())
		g.Expect(strings.ToLower(logs.String())).NotTo(ContainSubstring("forbidden"))
		g.Expect(logs.String()).NotTo(BeEmpty(), "the controller logs were captured")
	})
}

// TestRBAC_NamespacedChartIsSufficient installs the chart's namespaced RBAC
// and runs the controller as the chart does with namespaced: true, limited
// to its namespace, through a blue/green release.
func TestRBAC_NamespacedChartIsSufficient(t *testing.T) {
	cluster(t)
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	const ns = "team-b"

	objs, err := renderChartIn(ns, "namespaced: true")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ofKind(objs, "ClusterRole")).To(BeEmpty())
	g.Expect(args(t, find(objs, "Deployment", "serin"))).To(ContainElement("--watch-namespace=" + ns))
	installRBAC(t, objs)
	t.Cleanup(func() {
		_ = adminClient.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})

	user := "system:serviceaccount:" + ns + ":serin"
	probe, err := client.New(asServiceAccount(user, nil), client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	err = probe.List(ctx, &serinv1.CanaryList{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Canaries of all namespaces as %s: %v", user, err)

	t.Cleanup(func() {
		if t.Failed() {
			t.Log("controller log:\n" + logs.String())
		}
	})
	forbidden := &forbiddenRecorder{}
	startController(t, controllerRun{user: user, namespace: ns, watchNamespace: ns, provider: serinv1.ProviderKubernetes}, forbidden)

	canary := newCanary(ns, "bluegreen")
	canary.Spec.Provider = serinv1.ProviderKubernetes
	canary.Spec.Analysis.StepWeight, canary.Spec.Analysis.MaxWeight, canary.Spec.Analysis.Iterations = 0, 0, 1
	for _, o := range []client.Object{newDeployment(ns, "bluegreen", "example.com/app:v1"), canary} {
		g.Expect(adminClient.Create(ctx, o)).To(Succeed())
	}
	g.Eventually(phaseOf(ns, "bluegreen", forbidden), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	setImage(g, ns, "bluegreen", "example.com/app:v2")
	g.Eventually(phaseOf(ns, "bluegreen", forbidden), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(kstatusOf(g, ns, "bluegreen")).To(Equal(status.CurrentStatus))
	g.Expect(forbidden.seen()).To(BeEmpty())
	g.Expect(strings.ToLower(logs.String())).NotTo(ContainSubstring("forbidden"))
}
