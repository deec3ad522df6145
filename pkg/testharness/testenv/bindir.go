package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Versions of the binaries built by e2e/testbin/build.sh. They must match the
// pins there; together they name the cache directory.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
	KwokVersion       = "v0.8.0"
)

// testbinName is the cache directory name build.sh uses for these versions.
const testbinName = "k8s-" + KubernetesVersion + "-etcd-" + EtcdVersion + "-kwok-" + KwokVersion

// TestbinDirEnv names the environment variable that points at a testbin cache
// directory (holding bin/ and kwok-stages/); `make testbin` exports it.
const TestbinDirEnv = "SERIN_TESTBIN_DIR"

// BinDir resolves the directory holding etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl and kwok. It is also usable
// as controller-runtime envtest's KUBEBUILDER_ASSETS.
func BinDir() (string, error) {
	dir, err := testbinDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bin"), nil
}

func testbinDir() (string, error) {
	if dir := os.Getenv(TestbinDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bin")); err != nil {
			return "", fmt.Errorf("%s=%s has no bin directory (run `make testbin`): %w", TestbinDirEnv, dir, err)
		}
		return dir, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locating the testbin cache: %w (run `make testbin` and set %s)", err, TestbinDirEnv)
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "serin", "testbin", testbinName)
	// build.sh writes .complete last, so its absence means a missing or
	// interrupted build.
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("control-plane binaries not found: %s is not set and %s is not a complete build; run `make testbin`", TestbinDirEnv, dir)
		}
		return "", fmt.Errorf("checking %s: %w (run `make testbin`)", dir, err)
	}
	return dir, nil
}

// checkBinaries reports every required binary missing from binDir at once.
func checkBinaries(binDir string, names ...string) error {
	var missing []string
	for _, n := range names {
		st, err := os.Stat(filepath.Join(binDir, n))
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing executables %v in %s; run `make testbin`", missing, binDir)
	}
	return nil
}
