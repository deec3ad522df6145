package main

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/apis/scheme"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// kube connects the commands that read or change Canaries to the cluster
// with kubectl's flags (--kubeconfig, --context, --namespace, ...).
type kube struct {
	flags *genericclioptions.ConfigFlags
}

func newKube() *kube {
	return &kube{flags: genericclioptions.NewConfigFlags(true)}
}

// client returns a client that knows the built-in kinds and Serin's, and the
// namespace the flags or the kubeconfig context select.
func (k *kube) client() (client.WithWatch, string, error) {
	cfg, err := k.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := k.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, "", err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, "", err
	}
	return c, ns, nil
}

// getCanary reads one Canary, with an error that names it.
func getCanary(ctx context.Context, c client.Client, ns, name string) (*serinv1.Canary, error) {
	canary := &serinv1.Canary{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, canary); err != nil {
		return nil, fmt.Errorf("canary %s/%s: %w", ns, name, err)
	}
	return canary, nil
}

// whoAmI is the user the apiserver authenticates, for the Event of an
// operation; empty when the cluster cannot tell.
func whoAmI(ctx context.Context, c client.Client) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return ""
	}
	return review.Status.UserInfo.Username
}

// age is the short form kubectl prints in AGE columns.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}
