package v1beta1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// controllerGen must match CONTROLLER_TOOLS_VERSION in the Makefile.
const controllerGen = "sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0"

// TestGeneratedFilesAreCurrent regenerates the deepcopy functions and CRDs
// in a scratch copy of the module and fails when the checked-in files differ.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(scratch, f))
	}
	apiDir := filepath.Join("pkg", "apis", "serin", "v1beta1")
	entries, err := os.ReadDir(filepath.Join(root, apiDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || filepath.Ext(name) != ".go" || name == "zz_generated.deepcopy.go" {
			continue
		}
		copyFile(t, filepath.Join(root, apiDir, name), filepath.Join(scratch, apiDir, name))
	}

	run := func(args ...string) {
		cmd := exec.Command("go", append([]string{"run", controllerGen}, args...)...)
		cmd.Dir = scratch
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, out)
		}
	}
	run("object", "paths=./pkg/apis/...")
	run("crd:allowDangerousTypes=true", "paths=./pkg/apis/...", "output:crd:artifacts:config=artifacts/crds")

	compare := func(rel string) {
		want, err := os.ReadFile(filepath.Join(scratch, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Errorf("%s is missing: run 'make generate'", rel)
			return
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run 'make generate'", rel)
		}
	}
	compare(filepath.Join(apiDir, "zz_generated.deepcopy.go"))
	crds, err := filepath.Glob(filepath.Join(scratch, "artifacts", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkedIn, err := filepath.Glob(filepath.Join(root, "artifacts", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != len(checkedIn) {
		t.Errorf("artifacts/crds has %d files, controller-gen writes %d: run 'make generate'", len(checkedIn), len(crds))
	}
	for _, f := range crds {
		rel, err := filepath.Rel(scratch, f)
		if err != nil {
			t.Fatal(err)
		}
		compare(rel)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
