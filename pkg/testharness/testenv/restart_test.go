package testenv_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// Restarting kube-apiserver and etcd keeps the stored objects, and clients
// made before keep working once StartComponent returns.
func TestRestartComponents(t *testing.T) {
	requireBinaries(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer})
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(env.Config)

	create := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	mustExist := func(names ...string) {
		t.Helper()
		for _, name := range names {
			if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("reading %s: %v", name, err)
			}
		}
	}
	create("before")

	// An informer started before the restarts keeps up across them.
	seen := make(chan string, 10)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace("default"))
	informer := factory.Core().V1().ConfigMaps().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		select {
		case seen <- obj.(*corev1.ConfigMap).Name:
		default: // only the names the test waits for matter
		}
	}}); err != nil {
		t.Fatal(err)
	}
	informerCtx, stopInformers := context.WithCancel(ctx)
	factory.Start(informerCtx.Done())
	defer factory.Shutdown()
	defer stopInformers()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}

	for _, name := range []string{testenv.KubeAPIServer, testenv.Etcd} {
		pid := env.PIDs()[name]
		start := time.Now()
		if err := env.StopComponent(name); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s stopped in %v", name, time.Since(start).Round(time.Millisecond))
		if _, ok := env.PIDs()[name]; ok {
			t.Errorf("PIDs() lists stopped %s", name)
		}
		// Down means down: requests fail rather than succeed from a cache.
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := client.CoreV1().ConfigMaps("default").Get(short, "before", metav1.GetOptions{})
		cancel()
		if err == nil {
			t.Errorf("reading with %s stopped succeeded", name)
		}
		if err := env.StopComponent(name); err != nil {
			t.Errorf("stopping %s twice: %v", name, err)
		}

		start = time.Now()
		if err := env.StartComponent(ctx, name); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s back in %v", name, time.Since(start).Round(time.Millisecond))
		if got := env.PIDs()[name]; got == 0 || got == pid {
			t.Errorf("PID of %s after restart = %d, was %d", name, got, pid)
		}
		if err := env.StartComponent(ctx, name); err == nil {
			t.Errorf("starting running %s succeeded", name)
		}
		mustExist("before")
		start = time.Now()
		create("after-" + name)
		expectSeen(t, seen, "after-"+name, time.Minute)
		t.Logf("informer saw an object created after the %s restart %v later", name, time.Since(start).Round(time.Millisecond))
	}

	start := time.Now()
	if err := env.RestartComponent(ctx, testenv.KubeAPIServer, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("RestartComponent(%s, 1s) took %v", testenv.KubeAPIServer, time.Since(start).Round(time.Millisecond))
	mustExist("before", "after-"+testenv.KubeAPIServer, "after-"+testenv.Etcd)

	// Both runs of a component log to one file, told apart by markers.
	data, err := os.ReadFile(env.Logs()[testenv.KubeAPIServer])
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "started again by StartComponent"); n != 2 {
		t.Errorf("kube-apiserver log has %d restart markers, want 2", n)
	}

	if err := env.StopComponent("kube-nothing"); err == nil {
		t.Error("stopping an unknown component succeeded")
	}
}

// Stop cleans up after a component that StopComponent left stopped, and
// does not report it as crashed.
func TestStopWithStoppedComponent(t *testing.T) {
	requireBinaries(t)
	env, err := testenv.Start(t.Context(), testenv.Options{Mode: testenv.APIServer})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.StopComponent(testenv.KubeAPIServer); err != nil {
		t.Fatal(err)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s after Stop: %v, want removed", env.Dir, err)
	}
	if err := env.StartComponent(t.Context(), testenv.KubeAPIServer); err == nil {
		t.Error("StartComponent after Stop succeeded")
	}
}

// expectSeen waits for an informer's handler to report name on seen.
func expectSeen(t *testing.T, seen <-chan string, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-seen:
			if got == name {
				return
			}
		case <-deadline:
			t.Fatalf("informer did not see %s within %v", name, timeout)
		}
	}
}

// In Full mode every component can be restarted, and the cluster still runs
// workloads afterwards.
func TestRestartInFullMode(t *testing.T) {
	requireBinaries(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.Full})
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(env.Config)

	for _, name := range []string{testenv.KubeAPIServer, testenv.Etcd, testenv.KubeControllerManager, testenv.KubeScheduler, testenv.Kwok} {
		start := time.Now()
		if err := env.RestartComponent(ctx, name, time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("RestartComponent(%s, 1s) took %v", name, time.Since(start).Round(time.Millisecond))
	}

	labels := map[string]string{"app": "after-restarts"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "after-restarts", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		d, err := client.AppsV1().Deployments("default").Get(ctx, "after-restarts", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(2))
	}).WithTimeout(2 * time.Minute).WithPolling(250 * time.Millisecond).Should(Succeed())
	t.Logf("Deployment ready %v after the restarts", time.Since(start).Round(time.Millisecond))
}
