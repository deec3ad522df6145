package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	istionetworking "istio.io/api/networking/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

// DefaultNginxAnnotationPrefix is the annotation prefix of ingress-nginx.
const DefaultNginxAnnotationPrefix = "nginx.ingress.kubernetes.io"

// Flagger's form of a cookie match, ^(.*?;)?(NAME=always)(;.*)?$, which
// NGINX carries as canary-by-cookie: NAME.
const (
	cookieRegexPrefix = "^(.*?;)?("
	cookieRegexSuffix = "=always)(;.*)?$"
)

// lastAppliedAnnotation is kubectl's record of the user's Ingress; it does
// not describe the canary copy, so it is not copied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// NginxRouter routes with ingress-nginx canary Ingresses, like Flagger: the
// user's Ingress (spec.ingressRef) keeps routing to the apex Service, and a
// copy named <ingress>-canary routes to the canary Service, with
// canary-weight or canary-by-header/cookie annotations that tell NGINX how
// much traffic to divert to it. The user's Ingress is never modified.
type NginxRouter struct {
	Reader       client.Reader
	Client       client.Client
	FieldManager string
	// AnnotationPrefix is the ingress controller's annotation prefix;
	// empty means DefaultNginxAnnotationPrefix.
	AnnotationPrefix string
}

// SetRoutes applies the canary Ingress for t.
func (n *NginxRouter) SetRoutes(ctx context.Context, r Route, t analysis.Traffic) (analysis.Traffic, error) {
	return readBack(ctx, n, r, n.setRoutes(ctx, r, t))
}

func (n *NginxRouter) setRoutes(ctx context.Context, r Route, t analysis.Traffic) error {
	if t.Mirror {
		return errors.New("the nginx provider cannot mirror traffic")
	}
	ing, err := n.userIngress(ctx, r.Canary)
	if err != nil {
		return err
	}
	desired, err := n.desired(r.Canary, ing, t)
	if err != nil {
		return err
	}
	a := n.applier()
	ref := apply.Ref{Kind: "Ingress", Namespace: *desired.Namespace, Name: *desired.Name, Owner: r.Canary}
	var live networkingv1.Ingress
	exists, err := a.Read(ctx, ref, &live)
	if err != nil {
		return err
	}
	_, err = apply.Apply(ctx, a, apply.Write[*networkingv1.Ingress]{
		Ref: ref,
		// What Serin owns on the live object equals what it would apply
		// exactly when applying would change nothing.
		UpToDate: func(live *networkingv1.Ingress) (bool, error) {
			mine, err := networkingv1ac.ExtractIngress(live, a.FieldManager)
			if err != nil {
				return false, fmt.Errorf("reading Serin's fields of Ingress %s: %w", *desired.Name, err)
			}
			return equality.Semantic.DeepEqual(mine, desired), nil
		},
		Desired: func() (*unstructured.Unstructured, error) { return apply.JSONBody(desired) },
	}, &live, exists)
	return err
}

func (n *NginxRouter) applier() *apply.Applier {
	return &apply.Applier{Reader: n.Reader, Client: n.Client, FieldManager: n.FieldManager}
}

// Routes reads the split back from the canary Ingress's annotations.
func (n *NginxRouter) Routes(ctx context.Context, r Route) (analysis.Traffic, error) {
	name, err := canaryIngressName(r.Canary)
	if err != nil {
		return analysis.Traffic{}, err
	}
	var ing networkingv1.Ingress
	err = n.Reader.Get(ctx, client.ObjectKey{Namespace: r.Canary.Namespace, Name: name}, &ing)
	if apierrors.IsNotFound(err) {
		return analysis.Traffic{}, nil
	}
	if err != nil {
		return analysis.Traffic{}, fmt.Errorf("reading Ingress %s: %w", name, err)
	}
	var t analysis.Traffic
	if w, ok := ing.Annotations[n.annotation("canary-weight")]; ok {
		if t.CanaryWeight, err = strconv.Atoi(w); err != nil {
			return analysis.Traffic{}, fmt.Errorf("reading Ingress %s: invalid %s %q", name, n.annotation("canary-weight"), w)
		}
	}
	for _, by := range []string{"canary-by-header", "canary-by-cookie"} {
		if ing.Annotations[n.annotation(by)] != "" {
			t.MatchToCanary = true
		}
	}
	return t, nil
}

// Revert deletes the canary Ingress, if the Canary controls it; the user's
// Ingress was never changed.
func (n *NginxRouter) Revert(ctx context.Context, r Route) error {
	name, err := canaryIngressName(r.Canary)
	if err != nil {
		return err
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: r.Canary.Namespace, Name: name}}
	return n.applier().Delete(ctx, r.Canary, ing)
}

func (n *NginxRouter) annotation(name string) string {
	prefix := n.AnnotationPrefix
	if prefix == "" {
		prefix = DefaultNginxAnnotationPrefix
	}
	return prefix + "/" + name
}

func canaryIngressName(c *serinv1.Canary) (string, error) {
	if c.Spec.IngressRef == nil || c.Spec.IngressRef.Name == "" {
		return "", fmt.Errorf("canary %s/%s has no spec.ingressRef, which the nginx provider requires", c.Namespace, c.Name)
	}
	return c.Spec.IngressRef.Name + "-canary", nil
}

func (n *NginxRouter) userIngress(ctx context.Context, c *serinv1.Canary) (*networkingv1.Ingress, error) {
	if _, err := canaryIngressName(c); err != nil {
		return nil, err
	}
	var ing networkingv1.Ingress
	if err := n.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.IngressRef.Name}, &ing); err != nil {
		return nil, fmt.Errorf("reading Ingress %s (spec.ingressRef): %w", c.Spec.IngressRef.Name, err)
	}
	return &ing, nil
}

// desired is the canary Ingress: the user's Ingress with the apex Service
// replaced by the canary Service, and the canary annotations.
func (n *NginxRouter) desired(c *serinv1.Canary, user *networkingv1.Ingress, t analysis.Traffic) (*networkingv1ac.IngressApplyConfiguration, error) {
	names := naming.ServicesOf(c)
	spec := user.Spec.DeepCopy()
	replaced := retarget(spec.DefaultBackend, names)
	for i := range spec.Rules {
		if spec.Rules[i].HTTP == nil {
			continue
		}
		for j := range spec.Rules[i].HTTP.Paths {
			replaced = retarget(&spec.Rules[i].HTTP.Paths[j].Backend, names) || replaced
		}
	}
	if !replaced {
		return nil, fmt.Errorf("the Ingress %s does not route to Service %s", user.Name, names.Apex)
	}
	// The apply configuration has the typed spec's JSON form, so a round
	// trip copies every field, including those added in later API versions.
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specAC := &networkingv1ac.IngressSpecApplyConfiguration{}
	if err := json.Unmarshal(raw, specAC); err != nil {
		return nil, err
	}

	annotations := map[string]string{}
	for k, v := range user.Annotations {
		if !strings.HasPrefix(k, n.annotation("canary")) && k != lastAppliedAnnotation {
			annotations[k] = v
		}
	}
	canary, err := n.canaryAnnotations(c, t)
	if err != nil {
		return nil, err
	}
	maps.Copy(annotations, canary)

	ing := networkingv1ac.Ingress(user.Name+"-canary", c.Namespace).
		WithAnnotations(annotations).
		WithOwnerReferences(apply.ControllerRefApply(c)).
		WithSpec(specAC)
	if len(user.Labels) > 0 {
		ing.WithLabels(user.Labels)
	}
	return ing, nil
}

// retarget points b at the canary Service if it is the apex Service.
func retarget(b *networkingv1.IngressBackend, names naming.Services) bool {
	if b == nil || b.Service == nil || b.Service.Name != names.Apex {
		return false
	}
	b.Service.Name = names.Canary
	return true
}

// canaryAnnotations says how NGINX diverts traffic: by weight, or for A/B
// testing by one header and/or one cookie, which is all NGINX can match.
func (n *NginxRouter) canaryAnnotations(c *serinv1.Canary, t analysis.Traffic) (map[string]string, error) {
	_, weight := Split(t)
	a := map[string]string{n.annotation("canary"): "true"}
	if !t.MatchToCanary {
		a[n.annotation("canary-weight")] = strconv.Itoa(int(weight))
		return a, nil
	}
	a[n.annotation("canary-weight")] = "0"
	matches, err := ParseMatches(c.Spec.Analysis.Match)
	if err != nil {
		return nil, fmt.Errorf("analysis.match: %w", err)
	}
	if len(matches) == 0 {
		return nil, errors.New("the nginx provider needs analysis.match to route A/B tests")
	}
	for i, m := range matches {
		rest := proto.Clone(m).(*istionetworking.HTTPMatchRequest)
		rest.Headers, rest.Name = nil, ""
		if !proto.Equal(rest, &istionetworking.HTTPMatchRequest{}) {
			return nil, fmt.Errorf("analysis.match[%d]: the nginx provider can only match headers and cookies", i)
		}
		for header, sm := range m.GetHeaders() {
			kind, value, _ := StringMatchOf(sm)
			if header == "cookie" && kind == MatchRegex {
				if name, ok := strings.CutPrefix(value, cookieRegexPrefix); ok {
					if name, ok := strings.CutSuffix(name, cookieRegexSuffix); ok {
						if err := setOnce(a, n.annotation("canary-by-cookie"), name); err != nil {
							return nil, fmt.Errorf("analysis.match[%d]: %w", i, err)
						}
						continue
					}
				}
			}
			var byValue string
			switch kind {
			case MatchExact:
				byValue = n.annotation("canary-by-header-value")
			case MatchRegex:
				byValue = n.annotation("canary-by-header-pattern")
			default:
				return nil, fmt.Errorf("analysis.match[%d]: header %s: the nginx provider supports exact and regex header matches only", i, header)
			}
			if err := setOnce(a, n.annotation("canary-by-header"), header); err != nil {
				return nil, fmt.Errorf("analysis.match[%d]: %w", i, err)
			}
			a[byValue] = value
		}
	}
	return a, nil
}

// setOnce refuses a second header or cookie: NGINX matches only one of each.
func setOnce(a map[string]string, key, value string) error {
	if old, ok := a[key]; ok {
		return fmt.Errorf("nginx matches a single %s, not both %q and %q", key, old, value)
	}
	a[key] = value
	return nil
}
