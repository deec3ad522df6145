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

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
)

const fieldManager = "serin-testenv"

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
	crdClient := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		// Status is owned by the API server; applying it would only be
		// dropped.
		unstructured.RemoveNestedField(crd.Object, "status")
		data, err := json.Marshal(crd.Object)
		if err != nil {
			return err
		}
		_, err = crdClient.Patch(ctx, crd.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
		if err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		name := crd.GetName()
		if err := e.poll(ctx, "CRD "+name+" to be established", func(ctx context.Context) (bool, error) {
			got, err := crdClient.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !crdCondition(got, apiextensionsv1.Established) || !crdCondition(got, apiextensionsv1.NamesAccepted) {
				return false, fmt.Errorf("conditions: %+v", got.Status.Conditions)
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	return nil
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
