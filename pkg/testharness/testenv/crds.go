package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
)

const (
	fieldManager = "serin-testenv"
	// createHoldOff is how long after Established kube-apiserver delays
	// creates of a CRD's objects.
	createHoldOff = 2 * time.Second
)

// InstallCRDs applies (server-side) the CustomResourceDefinitions found in
// paths, which are YAML or JSON files, possibly multi-document, or
// directories searched recursively for *.yaml, *.yml and *.json. Other kinds
// of objects are skipped. It returns once every CRD is Established and its
// names are accepted.
func (e *Env) InstallCRDs(ctx context.Context, paths ...string) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	crds, err := readCRDs(paths)
	if err != nil {
		return err
	}
	client, err := apiextensionsclient.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		// Status is owned by the API server; applying it would only be
		// dropped.
		unstructured.RemoveNestedField(crd.Object, "status")
		data, err := json.Marshal(crd.Object)
		if err != nil {
			return err
		}
		_, err = client.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
		if err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.GetName(), err)
		}
	}
	// Each CRD's first list costs about a second (see waitForCRD), so wait
	// for all of them at once.
	errs := make([]error, len(crds))
	var wg sync.WaitGroup
	for i, crd := range crds {
		wg.Go(func() { errs[i] = e.waitForCRD(ctx, client, crd.GetName()) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitForCRD waits until the CRD is established, its resources are in
// discovery and they can be listed.
func (e *Env) waitForCRD(ctx context.Context, client apiextensionsclient.Interface, name string) error {
	var crd *apiextensionsv1.CustomResourceDefinition
	if err := e.poll(ctx, "CRD "+name+" to be established", func(ctx context.Context) (bool, error) {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !crdCondition(got, apiextensionsv1.Established) || !crdCondition(got, apiextensionsv1.NamesAccepted) {
			return false, fmt.Errorf("conditions: %+v", got.Status.Conditions)
		}
		crd = got
		return true, nil
	}); err != nil {
		return err
	}
	rc := client.Discovery().RESTClient()
	plural := crd.Spec.Names.Plural
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		gv := crd.Spec.Group + "/" + v.Name
		// Discovery is updated asynchronously after Established; clients
		// that map kinds to resources (controller-runtime) need it.
		if err := e.poll(ctx, "discovery of "+plural+" in "+gv, func(ctx context.Context) (bool, error) {
			var list metav1.APIResourceList
			if err := rc.Get().AbsPath("/apis", gv).Do(ctx).Into(&list); err != nil {
				return false, err
			}
			for _, r := range list.APIResources {
				if r.Name == plural {
					return true, nil
				}
			}
			return false, errors.New("not listed yet")
		}); err != nil {
			return err
		}
		// The first request creates the resource's storage, whose watch
		// cache answers 429 "Retry-After: 1" until it has initialized.
		// Taking that here spares tests a one-second stall on first use.
		if err := e.poll(ctx, plural+" in "+gv+" to be served", func(ctx context.Context) (bool, error) {
			err := rc.Get().AbsPath("/apis", gv, plural).Param("limit", "1").Do(ctx).Error()
			return err == nil, err
		}); err != nil {
			return err
		}
	}
	// The API server holds every create of a custom resource for 2 s while
	// its CRD became Established less than 2 s ago (an HA safeguard). Sit
	// that out here rather than stall the test's first create.
	var establishedAt time.Time
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			establishedAt = c.LastTransitionTime.Time
		}
	}
	select {
	case <-time.After(time.Until(establishedAt.Add(createHoldOff))):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for CRD %s: %w", name, ctx.Err())
	}
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// readCRDs collects the CRD documents in paths. Finding none is an error, as
// it almost certainly means a wrong path.
func readCRDs(paths []string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading CRDs: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading CRDs: %w", err)
		}
	}

	var crds []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CRDs: %w", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("decoding %s: %w", f, err)
			}
			if obj == nil { // empty document
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			gvk := u.GroupVersionKind()
			if gvk.Group != apiextensionsv1.GroupName || gvk.Kind != "CustomResourceDefinition" {
				continue
			}
			if u.GetName() == "" {
				return nil, fmt.Errorf("%s: CustomResourceDefinition without a name", f)
			}
			crds = append(crds, u)
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinition found in %v", paths)
	}
	return crds, nil
}
