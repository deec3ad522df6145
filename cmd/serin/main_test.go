package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	flag "github.com/spf13/pflag"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/serin-dev/serin/pkg/controller"
	"github.com/serin-dev/serin/pkg/refpolicy"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// TestControllerBinary builds cmd/serin and runs it against a real
// kube-apiserver that does not serve Serin's API yet: it waits instead of
// exiting, and once the CRDs are installed it serves its probes and
// metrics, takes the leader election Lease, and on SIGTERM releases the
// Lease and exits 0.
func TestControllerBinary(t *testing.T) {
	g := NewWithT(t)
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer})
	kube := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	const namespace = "serin-system"
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	bin := filepath.Join(t.TempDir(), "serin")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/serin-dev/serin/pkg/buildinfo.Version=v1.2.3 -X github.com/serin-dev/serin/pkg/buildinfo.Commit=abc1234", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	metricsAddr, healthAddr := freeAddr(t), freeAddr(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "serin.log"))
	g.Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin,
		"--kubeconfig="+env.KubeconfigPath,
		"--metrics-addr="+metricsAddr,
		"--health-addr="+healthAddr,
		"--leader-election-namespace="+namespace,
		"--log-encoding=console",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g.Expect(cmd.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("controller log:\n%s", out)
		}
	})

	g.Eventually(func() (string, error) { out, err := os.ReadFile(logFile.Name()); return string(out), err }, 30*time.Second, 200*time.Millisecond).
		Should(ContainSubstring("waiting for the API server to serve serin.dev/v1beta1"))
	g.Consistently(exited, 3*time.Second).ShouldNot(Receive(), "no exit while the CRDs are missing")
	g.Expect(env.InstallCRDs(ctx, "../../artifacts/crds")).To(Succeed())

	get := func(url string) (int, string) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		g.Eventually(func() int { code, _ := get("http://" + healthAddr + path); return code }, 30*time.Second, 200*time.Millisecond).
			Should(Equal(http.StatusOK), path)
	}
	g.Eventually(func() string { _, body := get("http://" + metricsAddr + "/metrics"); return body }, 10*time.Second, 200*time.Millisecond).
		Should(ContainSubstring("leader_election_master_status"))

	var lease *coordinationv1.Lease
	g.Eventually(func() (string, error) {
		lease, err = kube.CoordinationV1().Leases(namespace).Get(ctx, "serin-leader-election", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return "", err
		}
		return *lease.Spec.HolderIdentity, nil
	}, 30*time.Second, 200*time.Millisecond).ShouldNot(BeEmpty())
	hostname, _ := os.Hostname()
	g.Expect(*lease.Spec.HolderIdentity).To(HavePrefix(hostname))
	_, body := get("http://" + metricsAddr + "/metrics")
	g.Expect(body).To(ContainSubstring(`leader_election_master_status{name="serin-leader-election"} 1`))
	g.Expect(body).To(MatchRegexp(`serin_info\{commit="abc1234",go_version="go[^"]+",version="v1.2.3"\} 1`), "the build's version, as make build sets it")
	log, err := os.ReadFile(logFile.Name())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(log)).To(MatchRegexp(`starting manager.*"version": "v1.2.3", "commit": "abc1234"`))

	g.Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	select {
	case err := <-exited:
		g.Expect(err).NotTo(HaveOccurred(), "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("controller did not exit within 30s of SIGTERM")
	}
	lease, err = kube.CoordinationV1().Leases(namespace).Get(ctx, "serin-leader-election", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "").To(BeTrue(), "the Lease is released on shutdown")
}

func TestManagerOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    options
		wantErr string
		check   func(g *WithT, got managerResult)
	}{
		{
			name:  "defaults elect one leader for all Canaries",
			opts:  options{concurrent: 4, metricErrorLimit: 3, provider: "kubernetes"},
			check: func(g *WithT, got managerResult) { g.Expect(got.leaderElectionID).To(Equal("serin-leader-election")) },
		},
		{
			name: "a label selector gets its own leader and filters Canaries",
			opts: options{concurrent: 4, metricErrorLimit: 3, provider: "kubernetes", watchLabelSelector: "serin.dev/shard=a"},
			check: func(g *WithT, got managerResult) {
				g.Expect(got.leaderElectionID).To(HavePrefix("serin-leader-election-"))
				g.Expect(got.canarySelector).To(Equal("serin.dev/shard=a"))
			},
		},
		{
			name:  "a watch namespace limits the cache",
			opts:  options{concurrent: 1, metricErrorLimit: 3, provider: "istio", watchNamespace: "apps"},
			check: func(g *WithT, got managerResult) { g.Expect(got.namespaces).To(ConsistOf("apps")) },
		},
		{name: "concurrent must be positive", opts: options{concurrent: 0, metricErrorLimit: 3, provider: "kubernetes"}, wantErr: "--concurrent"},
		{name: "a namespace may not hold more check workers than there are", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "kubernetes", checkWorkers: 4, checkWorkersPerNS: 8}, wantErr: "--check-workers-per-namespace"},
		{name: "an unknown provider is refused", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "linkerd"}, wantErr: "--provider"},
		{name: "a bad selector is refused", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "kubernetes", watchLabelSelector: "a=(b"}, wantErr: "--watch-label-selector"},
		{name: "an unknown alert severity is refused", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "kubernetes", alertSeverity: "critical"}, wantErr: "--alert-severity"},
		{name: "a default alert provider needs an address", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "kubernetes", alertType: "slack"}, wantErr: "--alert-type/--alert-address"},
		{name: "an unknown alert type is refused", opts: options{concurrent: 1, metricErrorLimit: 3, provider: "kubernetes", alertType: "pager", alertAddress: "https://hooks.example.com/x"}, wantErr: "--alert-type/--alert-address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := managerOptions(tt.opts)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Controller.MaxConcurrentReconciles).To(Equal(tt.opts.concurrent))
			// Cached objects lose their managedFields.
			g.Expect(got.Cache.DefaultTransform).NotTo(BeNil())
			cached, err := got.Cache.DefaultTransform(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(cached.(*metav1.PartialObjectMetadata).ManagedFields).To(BeEmpty())
			res := managerResult{leaderElectionID: got.LeaderElectionID}
			for obj, by := range got.Cache.ByObject {
				if strings.HasSuffix(fmt.Sprintf("%T", obj), "Canary") {
					res.canarySelector = by.Label.String()
				}
			}
			for ns := range got.Cache.DefaultNamespaces {
				res.namespaces = append(res.namespaces, ns)
			}
			tt.check(g, res)
		})
	}
}

type managerResult struct {
	leaderElectionID string
	canarySelector   string
	namespaces       []string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSharedNamespaces: Canaries may use the templates and alert providers
// of the controller's own namespace unless the operator says otherwise.
func TestSharedNamespaces(t *testing.T) {
	for _, tt := range []struct {
		name    string
		runtime string
		args    []string
		want    refpolicy.Policy
	}{
		{name: "the controller's namespace by default", runtime: "serin-system", want: refpolicy.Policy{Shared: []string{"serin-system"}}},
		{name: "nothing shared outside a cluster", want: refpolicy.Policy{}},
		{name: "a list replaces the default", runtime: "serin-system", args: []string{"--shared-namespaces=platform,istio-system"}, want: refpolicy.Policy{Shared: []string{"platform", "istio-system"}}},
		{name: "an empty list shares none", runtime: "serin-system", args: []string{"--shared-namespaces="}, want: refpolicy.Policy{}},
		{name: "own namespace only", runtime: "serin-system", args: []string{"--no-cross-namespace-refs"}, want: refpolicy.Policy{Shared: []string{"serin-system"}, OwnOnly: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			t.Setenv("RUNTIME_NAMESPACE", tt.runtime)
			var o options
			fs := flag.NewFlagSet("serin", flag.ContinueOnError)
			bindFlags(fs, &o)
			g.Expect(fs.Parse(tt.args)).To(Succeed())
			g.Expect(controllerConfig(o).Refs).To(Equal(tt.want))
		})
	}
}

func TestFlagDefaults(t *testing.T) {
	g := NewWithT(t)
	var o options
	fs := flag.NewFlagSet("serin", flag.ContinueOnError)
	bindFlags(fs, &o)
	g.Expect(fs.Parse(nil)).To(Succeed())
	g.Expect(o.leaderElection.Enable).To(BeTrue(), "one replica at a time runs releases")
	g.Expect(o.client.QPS).To(Equal(float32(200)))
	g.Expect(o.client.Burst).To(Equal(500))
	g.Expect(fs.Lookup("kube-api-qps").DefValue).To(Equal("200"), "--help shows the real default")
	g.Expect(o.concurrent).To(Equal(16), "reconciles mostly wait on the API server (make bench)")
	g.Expect(o.kubeAPICompression).To(BeFalse(), "gzip costs CPU on both ends (make bench)")
	g.Expect(o.enablePprof).To(BeFalse(), "the metrics address is unauthenticated")
	g.Expect(metricsServer(o).ExtraHandlers).To(BeEmpty(), "no /debug/pprof by default")
	o.enablePprof = true
	g.Expect(metricsServer(o).ExtraHandlers).To(HaveKey("/debug/pprof/"))

	g.Expect(o.reconcileTimeout).To(Equal(2 * time.Minute))
	g.Expect(controllerConfig(o).Options.Checks).To(Equal(controller.DefaultCheckLimits))

	g.Expect(fs.Parse([]string{"--kube-api-qps=20", "--enable-leader-election=false"})).To(Succeed())
	g.Expect(o.client.QPS).To(Equal(float32(20)))
	g.Expect(o.leaderElection.Enable).To(BeFalse())
}
