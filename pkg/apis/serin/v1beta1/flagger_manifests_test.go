package v1beta1_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/convert"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// TestFlaggerManifests: Canaries as Flagger's documentation writes them, for
// every router Serin shares with Flagger (testdata/flagger), are accepted
// by the API server with only the apiVersion changed. Strict field
// validation refuses a field the schema does not know instead of dropping
// it, so nothing a Flagger user wrote is lost without a word; and
// kubectl serin convert finds nothing to warn about in them either.
func TestFlaggerManifests(t *testing.T) {
	files, err := filepath.Glob("testdata/flagger/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d manifests in testdata/flagger", len(files))
	}
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// The tutorials reuse names: one namespace each.
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flagger-%d", i)}}
			if err := c.Create(ctx, ns); err != nil {
				t.Fatal(err)
			}
			obj := readObject(t, f)
			if obj.GetAPIVersion() != "flagger.app/v1beta1" {
				t.Fatalf("%s is not a Flagger manifest: apiVersion %s", f, obj.GetAPIVersion())
			}
			_, warnings, err := convert.FlaggerCanary(obj.DeepCopy().Object)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Errorf("convert warns: %s: %s", w.Path, w.Message)
			}

			obj.SetAPIVersion(serinv1.GroupVersion.String())
			obj.SetNamespace(ns.Name)
			if err := c.Create(ctx, obj, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("refused with only the apiVersion changed: %v", err)
			}
		})
	}
}
