package testenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// kwok manages only nodes carrying this annotation, so tests may still
	// add nodes of their own that nothing simulates.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
)

// startFull adds the controllers, the scheduler and kwok with its nodes.
func (e *Env) startFull(ctx context.Context, opts Options, creds *credentials, client kubernetes.Interface) error {
	stages, err := filepath.Glob(filepath.Join(filepath.Dir(opts.BinDir), "kwok-stages", "*.yaml"))
	if err != nil {
		return err
	}
	if len(stages) == 0 {
		return fmt.Errorf("no kwok stages in %s; run `make testbin`", filepath.Join(filepath.Dir(opts.BinDir), "kwok-stages"))
	}
	bin := func(name string) string { return filepath.Join(opts.BinDir, name) }

	if err := e.run(KubeControllerManager, bin(KubeControllerManager),
		"--kubeconfig="+e.KubeconfigPath,
		// Node IPAM would need a cluster CIDR; kwok assigns pod IPs itself.
		// node-lifecycle-controller stays: it lifts the not-ready taint.
		"--controllers=*,-node-ipam-controller",
		// Only signs legacy token Secrets, for tests that create them.
		"--service-account-private-key-file="+creds.saKeyFile,
		"--root-ca-file="+creds.certFile,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		// Nothing scrapes metrics; port 0 turns serving (and the authn
		// delegation it needs) off.
		"--secure-port=0",
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	); err != nil {
		return err
	}
	if err := e.run(KubeScheduler, bin(KubeScheduler),
		"--kubeconfig="+e.KubeconfigPath,
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return err
	}
	kwokPort, err := freePorts(1)
	if err != nil {
		return err
	}
	e.kwokURL = "http://127.0.0.1:" + strconv.Itoa(kwokPort[0])
	kwokArgs := []string{
		"--kubeconfig=" + e.KubeconfigPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=" + kwokNodeValue,
		"--server-address=127.0.0.1:" + strconv.Itoa(kwokPort[0]),
		"--cidr=" + podCIDR,
		"--node-ip=127.0.0.1",
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	if err := e.run(Kwok, bin(Kwok), kwokArgs...); err != nil {
		return err
	}

	for i := range opts.Nodes {
		if _, err := client.CoreV1().Nodes().Create(ctx, fakeNode("kwok-node-"+strconv.Itoa(i)), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node: %w", err)
		}
	}
	if err := e.poll(ctx, "kwok nodes to become Ready and untainted", func(ctx context.Context) (bool, error) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return false, err
		}
		for _, n := range nodes.Items {
			if !nodeReady(&n) {
				return false, fmt.Errorf("node %s not Ready", n.Name)
			}
			// nodelifecycle taints nodes until it has seen them Ready;
			// Start promises a cluster that schedules right away.
			if len(n.Spec.Taints) > 0 {
				return false, fmt.Errorf("node %s still tainted: %v", n.Name, n.Spec.Taints)
			}
		}
		return len(nodes.Items) == opts.Nodes, nil
	}); err != nil {
		return err
	}
	// The ServiceAccount admission plugin rejects pods until the
	// serviceaccount controller has created "default".
	return e.poll(ctx, "ServiceAccount default/default", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, errors.New("not created yet")
		}
		return err == nil, err
	})
}

// fakeNode is a Node for kwok to simulate, roomy enough for many test pods.
func fakeNode(name string) *corev1.Node {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
			Labels: map[string]string{
				"type":                 "kwok",
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
			},
		},
		// The API server keeps a new Node's status, and kwok's stages
		// preserve capacity and allocatable that are already set.
		Status: corev1.NodeStatus{Capacity: resources, Allocatable: resources},
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
