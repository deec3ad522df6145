package controller_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/controller"
	"github.com/serin-dev/serin/pkg/router"

	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

var (
	env       *testenv.Env
	k8sClient client.WithWatch
	scheme    = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := router.AddToScheme(scheme); err != nil {
		panic(err)
	}

	var err error
	crds, err := testenv.RouterCRDPaths()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env, err = testenv.Start(ctx, testenv.Options{Mode: testenv.Full, Nodes: 2, CRDPaths: append(crds, "../../artifacts/crds", "testdata/flagger-canary-crd.yaml")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	// The controller logs next to the component logs, kept when a test fails.
	logFile, err := os.Create(filepath.Join(env.Dir, "serin.log"))
	if err != nil {
		panic(err)
	}
	defer logFile.Close()
	ctrl.SetLogger(zap.New(zap.WriteTo(logFile), zap.UseDevMode(true)))

	k8sClient, err = client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}

	// Canaries of the restart test belong to the serin binary it runs.
	notRestartShard, err := labels.Parse("!" + restartShard)
	if err != nil {
		panic(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Client:  controller.ClientOptions(),
		Cache:   cache.Options{ByObject: map[client.Object]cache.ByObject{&serinv1.Canary{}: {Label: notRestartShard}}},
		// As many workers as the controller runs by default (--concurrent).
		Controller: ctrlconfig.Controller{MaxConcurrentReconciles: 4},
	})
	if err != nil {
		panic(err)
	}
	if err := controller.Setup(ctx, mgr, controller.Config{DefaultProvider: serinv1.ProviderKubernetes}); err != nil {
		panic(err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	code := m.Run()
	if code != 0 {
		env.KeepLogs()
		fmt.Fprintln(os.Stderr, "component logs kept in", env.Dir)
	}
	return code
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t-%d", rand.Int64N(1<<40))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return name
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: image,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}},
		},
	}
}

func newDeployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, image),
		},
	}
}

// newCanary is a blue/green Canary on the kubernetes provider: 3 iterations
// of 10s, threshold 2.
func newCanary(ns, name string, mods ...func(*serinv1.Canary)) *serinv1.Canary {
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			Provider:                serinv1.ProviderKubernetes,
			TargetRef:               serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			ProgressDeadlineSeconds: new(int32(120)),
			Service:                 serinv1.CanaryService{Port: 80, TargetPort: intOrString(8080)},
			Analysis:                serinv1.CanaryAnalysis{Interval: "10s", Threshold: 2, Iterations: 3},
		},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8sClient.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func get[T client.Object](g Gomega, ns, name string, obj T) T {
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed())
	return obj
}

// phaseOf returns a function for Eventually that reads a Canary's phase.
func phaseOf(ns, name string) func() (serinv1.CanaryPhase, error) {
	return func() (serinv1.CanaryPhase, error) {
		var c serinv1.Canary
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &c)
		return c.Status.Phase, err
	}
}

// phaseRecorder watches a Canary and records every phase it passes through,
// including short-lived ones that polling would miss.
type phaseRecorder struct {
	mu     sync.Mutex
	phases []serinv1.CanaryPhase
}

func recordPhases(t *testing.T, ns, name string) *phaseRecorder {
	t.Helper()
	w, err := k8sClient.Watch(context.Background(), &serinv1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	r := &phaseRecorder{}
	go func() {
		for ev := range w.ResultChan() {
			c, ok := ev.Object.(*serinv1.Canary)
			if !ok || c.Name != name || ev.Type == watch.Deleted {
				continue
			}
			r.mu.Lock()
			if n := len(r.phases); c.Status.Phase != "" && (n == 0 || r.phases[n-1] != c.Status.Phase) {
				r.phases = append(r.phases, c.Status.Phase)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *phaseRecorder) seen() []serinv1.CanaryPhase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.phases)
}

// since returns the phases recorded after the first occurrence of from.
func (r *phaseRecorder) since(from serinv1.CanaryPhase) []serinv1.CanaryPhase {
	all := r.seen()
	if i := slices.Index(all, from); i >= 0 {
		return all[i:]
	}
	return nil
}

// hookServer is a webhook receiver whose answer can be switched, counting
// the calls per path.
type hookServer struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	calls  map[string]int
}

func newHookServer(t *testing.T, status int) *hookServer {
	h := &hookServer{calls: map[string]int{}}
	h.status.Store(int32(status))
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.mu.Lock()
		h.calls[req.URL.Path]++
		h.mu.Unlock()
		w.WriteHeader(int(h.status.Load()))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[path]
}

const (
	release = 3 * time.Minute
	poll    = 250 * time.Millisecond
)
