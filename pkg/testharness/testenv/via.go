package testenv

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
)

// viaServerName is a name the serving certificate holds. Clients going
// through a proxy verify the certificate against it, so the proxy may listen
// on any address, not only on the loopback addresses the certificate names.
const viaServerName = "localhost"

// KubeAPIServerAddr is the host:port kube-apiserver listens on, for a proxy
// (see pkg/testharness/faultproxy) to forward to.
func (e *Env) KubeAPIServerAddr() string {
	return strings.TrimPrefix(e.Config.Host, "https://")
}

// ConfigVia returns a copy of Config that reaches kube-apiserver through
// addr (host:port), typically a proxy forwarding to KubeAPIServerAddr, with
// the same CA and credentials.
func (e *Env) ConfigVia(addr string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Host = "https://" + addr
	cfg.TLSClientConfig.ServerName = viaServerName
	return cfg
}

// KubeconfigVia writes a kubeconfig like KubeconfigPath's that reaches
// kube-apiserver through addr (host:port), for programs that take a
// kubeconfig file, and returns its path (inside Dir).
func (e *Env) KubeconfigVia(addr string) (string, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("testenv: kubeconfig via %q: %w", addr, err)
	}
	path := filepath.Join(e.Dir, "via-"+strings.NewReplacer(":", "_", "[", "", "]", "").Replace(addr)+".kubeconfig")
	if err := writeKubeconfig(path, "https://"+addr, viaServerName, e.creds); err != nil {
		return "", fmt.Errorf("testenv: kubeconfig via %s: %w", addr, err)
	}
	return path, nil
}
