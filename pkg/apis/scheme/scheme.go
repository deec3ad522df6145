// Package scheme registers the APIs that every Serin binary talks to: the
// built-in Kubernetes kinds and Serin's own. It links none of the routing
// APIs, so that kubectl-serin stays small; the controller adds those with
// router.AddToScheme.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// AddToScheme registers the built-in kinds and Serin's (serin.dev/v1beta1).
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		serinv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}
