package testenv

import (
	"fmt"
	"os/exec"
	"strings"
)

// ModuleDir returns where the Go module cache holds a module that the
// current module requires, so tests can install the CRD YAML shipped in it
// (Istio, Contour, Gateway API).
func ModuleDir(modulePath string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modulePath).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("go list -m %s: %v: %s", modulePath, err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", modulePath, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not in the module cache; run go mod download", modulePath)
	}
	return dir, nil
}
