package testenv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/serin-dev/serin/pkg/testharness/faultproxy"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// Clients through a fault proxy verify TLS and authenticate as usual; a
// severed connection ends a plain watch, and client-go dials again, so an
// informer carries on.
func TestClientViaFaultProxy(t *testing.T) {
	requireBinaries(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer})
	ctx := t.Context()
	proxy, err := faultproxy.New(env.KubeAPIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	path, err := env.KubeconfigVia(proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(fromFile).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("client from KubeconfigVia: %v", err)
	}

	client := kubernetes.NewForConfigOrDie(env.ConfigVia(proxy.Addr()))
	configMaps := client.CoreV1().ConfigMaps("default")
	create := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := configMaps.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}

	w, err := configMaps.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
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
	// Shutdown waits for the informers, which stop only once their stop
	// channel is closed.
	informerCtx, stopInformers := context.WithCancel(ctx)
	factory.Start(informerCtx.Done())
	defer factory.Shutdown()
	defer stopInformers()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	create("before")
	expectWatchEvent(t, w, watch.Added, "before")
	expectSeen(t, seen, "before", 30*time.Second)
	proxy.Sever()
	if n := proxy.Connections(); n != 0 {
		t.Errorf("Connections() after Sever = %d, want 0", n)
	}
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Fatalf("watch after Sever delivered %v instead of ending", ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end when its connection was severed")
	}

	start := time.Now()
	create("after")
	expectSeen(t, seen, "after", 30*time.Second)
	t.Logf("informer saw an object created after Sever %v later", time.Since(start).Round(time.Millisecond))
	if proxy.Connections() == 0 {
		t.Error("the informer is back but no connection goes through the proxy")
	}

	// Blocked, requests hang until their deadline rather than fail fast.
	proxy.Block(true)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = configMaps.Get(short, "before", metav1.GetOptions{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET while blocked: err = %v, want the context's deadline", err)
	}
	proxy.Block(false)
	start = time.Now()
	create("unblocked")
	expectSeen(t, seen, "unblocked", time.Minute)
	t.Logf("informer saw an object created after Block(false) %v later", time.Since(start).Round(time.Millisecond))
}

func expectWatchEvent(t *testing.T, w watch.Interface, typ watch.EventType, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended before %s %s", typ, name)
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == typ && cm.Name == name {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for %s", typ, name)
		}
	}
}
