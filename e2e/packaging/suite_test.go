// Package packaging_test checks the install paths: the kustomize
// overlays and the Helm chart build, say what they should, are accepted by
// a real kube-apiserver, and grant the controller every permission it uses.
package packaging_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

var (
	scheme = runtime.NewScheme()

	envOnce     sync.Once
	envErr      error
	env         *testenv.Env
	adminClient client.WithWatch
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run runs the tests and stops the cluster if one of them started it.
func run(m *testing.M) int {
	if err := router.AddToScheme(scheme); err != nil {
		panic(err)
	}
	// Before anything logs: controller-runtime's logger can be set only
	// once, and falls back to discarding everything 30s after start.
	captureLogs()
	code := m.Run()
	if env != nil {
		if code != 0 {
			env.KeepLogs()
			fmt.Fprintln(os.Stderr, "component logs kept in", env.Dir)
		}
		_ = env.Stop()
	}
	return code
}

// cluster returns the package's cluster, starting it on first use so that
// the build-only tests run without one. It is one Full-mode cluster: the
// apply tests only need an apiserver, but the RBAC test needs pods that
// become ready, and one control plane costs less than two.
func cluster(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		crds, err := testenv.RouterCRDPaths()
		if err != nil {
			envErr = err
			return
		}
		env, envErr = testenv.Start(context.Background(), testenv.Options{
			Mode:     testenv.Full,
			Nodes:    1,
			CRDPaths: append(crds, filepath.Join(repoRoot, "artifacts/crds")),
		})
		if envErr != nil {
			return
		}
		adminClient, envErr = client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	})
	if envErr != nil {
		t.Fatal("starting the local cluster:", envErr)
	}
	return env
}

// kustomizeBuild runs kustomize on dir (relative to the repository root)
// as `kustomize build` would.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs, err := decodeYAML(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

// decodeYAML splits a multi-document YAML stream into objects, skipping
// empty documents. Numbers become int64 or float64, as in objects read from
// the API.
func decodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if raw.Raw = bytes.TrimSpace(raw.Raw); len(raw.Raw) == 0 || string(raw.Raw) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw.Raw); err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
}

// find returns the object of kind and name (any namespace), nil if absent.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// ofKind returns the objects of kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// serinContainer returns the first container of a Deployment.
func serinContainer(t *testing.T, deploy *unstructured.Unstructured) map[string]any {
	t.Helper()
	if deploy == nil {
		t.Fatal("no Deployment")
	}
	containers, _, err := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) == 0 {
		t.Fatalf("Deployment %s has no containers (%v)", deploy.GetName(), err)
	}
	return containers[0].(map[string]any)
}

// args returns the container's args.
func args(t *testing.T, deploy *unstructured.Unstructured) []string {
	t.Helper()
	out, _, err := unstructured.NestedStringSlice(serinContainer(t, deploy), "args")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
