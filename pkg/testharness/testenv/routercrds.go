package testenv

import "path/filepath"

// RouterCRDPaths are the CRDs Serin's routers write, from the YAML shipped
// in the Istio, Contour and Gateway API modules that go.mod pins, so objects
// are validated by the schemas of the versions Serin is built against.
func RouterCRDPaths() ([]string, error) {
	var paths []string
	for _, crds := range []struct{ module, path string }{
		{"istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml"},
		{"github.com/projectcontour/contour", "examples/contour/01-crds.yaml"},
		{"sigs.k8s.io/gateway-api", "config/crd/standard"},
	} {
		dir, err := ModuleDir(crds.module)
		if err != nil {
			return nil, err
		}
		paths = append(paths, filepath.Join(dir, crds.path))
	}
	return paths, nil
}
