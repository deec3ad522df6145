package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/testharness/proc"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// controllerUser is the identity the controller authenticates as, so that
// the audit log tells its requests from everyone else's whatever user agent
// the binary sends.
const controllerUser = "serin-bench-controller"

// auditPolicy records every request once, when it completes, without
// bodies.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// clientCA is a CA that kube-apiserver trusts for client certificates
// (--client-ca-file), used only for the controller's certificate; the
// testenv's own users authenticate with tokens.
type clientCA struct {
	certFile string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
}

func newClientCA(dir string) (*clientCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "serin-bench-client-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &clientCA{certFile: filepath.Join(dir, "client-ca.crt"), cert: cert, key: key}
	return ca, os.WriteFile(ca.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

// writeKubeconfig writes a kubeconfig for user, a member of
// system:masters, against the cluster of env.
func (ca *clientCA) writeKubeconfig(path, user string, env *testenv.Env) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		// The API server takes the user from CN and groups from O.
		Subject:     pkix.Name{CommonName: user, Organization: []string{"system:masters"}},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ClientKeyData:         pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: user}
	cfg.CurrentContext = "bench"
	return clientcmd.WriteToFile(*cfg, path)
}

// startCluster starts the Full testenv with the audit log at auditLog, the
// controller's client CA trusted, enough kwok nodes for the pods of n
// Canaries and client limits raised so that the cluster's own controllers
// keep up with them.
func startCluster(ctx context.Context, dir string, n int, crds []string, ca *clientCA, auditLog string) (*testenv.Env, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	limits := []string{"--kube-api-qps=1000", "--kube-api-burst=2000"}
	return testenv.Start(ctx, testenv.Options{
		Mode:     testenv.Full,
		CRDPaths: crds,
		// A Canary has up to 3 pods at once (primary, canary and the
		// primary's surge pod while it rolls out); a node takes 110.
		Nodes: 3*n/100 + 1,
		ComponentArgs: map[string][]string{
			"kube-apiserver": {
				"--client-ca-file=" + ca.certFile,
				"--audit-policy-file=" + policy,
				"--audit-log-path=" + auditLog,
				"--audit-log-format=json",
				// Blocking: each event is written before the response,
				// so none is lost in a buffer at shutdown.
				"--audit-log-mode=blocking",
				// Rotation (by default at 100 MB) would split the
				// events over several files.
				"--audit-log-maxsize=100000",
				// Every Canary has three Services; the testenv's /24
				// holds 254.
				"--service-cluster-ip-range=10.0.0.0/16",
				// Thousands of Canaries' objects are created at once.
				"--max-requests-inflight=1000",
				"--max-mutating-requests-inflight=500",
			},
			"kube-controller-manager": append(limits, "--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20"),
			"kube-scheduler":          limits,
		},
	})
}

// controller is the serin process under test.
type controller struct {
	p          *proc.Process
	metricsURL string
}

// startController runs bin with default flags but for where to connect and
// listen, and waits until it is ready.
func startController(ctx context.Context, bin, kubeconfig, logPath string, extraArgs ...string) (*controller, error) {
	metricsAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	healthAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start("serin", bin, logPath, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-election-namespace=" + controllerNamespace,
		"--metrics-addr=" + metricsAddr,
		"--health-addr=" + healthAddr,
	}, extraArgs...)...)
	if err != nil {
		return nil, err
	}
	c := &controller{p: p, metricsURL: "http://" + metricsAddr + "/metrics"}
	return c, p.WaitHTTP(ctx, "http://"+healthAddr+"/readyz")
}

// benchCluster is a started local cluster and the benchmark's client of it.
type benchCluster struct {
	env          *testenv.Env
	client       client.Client
	ca           *clientCA
	auditLog     string
	startSeconds float64
}

// openCluster starts the local cluster sized for cfg.n Canaries, with crds
// installed and its audit log in dir.
func openCluster(ctx context.Context, cfg config, dir string, crds []string) (*benchCluster, error) {
	ca, err := newClientCA(dir)
	if err != nil {
		return nil, err
	}
	bc := &benchCluster{ca: ca, auditLog: filepath.Join(dir, "audit.log")}
	logf("starting the local cluster (%d kwok nodes)", 3*cfg.n/100+1)
	start := time.Now()
	if bc.env, err = startCluster(ctx, dir, cfg.n, crds, ca, bc.auditLog); err != nil {
		return nil, err
	}
	bc.startSeconds = time.Since(start).Seconds()
	if bc.client, err = newClient(bc.env.Config); err != nil {
		return nil, errors.Join(err, bc.env.Stop())
	}
	return bc, nil
}

// close stops the cluster and returns runErr with any error of stopping it;
// the logs are kept when keep is set or the run failed.
func (bc *benchCluster) close(keep bool, runErr error) error {
	if keep || runErr != nil {
		bc.env.KeepLogs()
		logf("cluster logs in %s", bc.env.Dir)
	}
	return errors.Join(runErr, bc.env.Stop())
}
