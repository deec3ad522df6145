package stack

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/telemetry"
)

// The sample app: its pods listen on appPort, its Services on servicePort.
const (
	appPort     = 8080
	servicePort = 80
	// AppImage is the image of the first version.
	AppImage = "ghcr.io/serin-dev/podinfo:6.0.0"
)

// Behaviour is how a version of the app answers, as the telemetry source
// reports it.
type Behaviour struct {
	ErrorRatio float64       // share of requests answered 500
	Latency    time.Duration // of every request; zero is the source's default
}

// NewCanary is the Canary of the sample app name on provider p, with the
// built-in success-rate (≥ 99%) and p99 latency (≤ 500ms) checks every 10s:
// two weight steps of 25% on a router, or two iterations on the kubernetes
// provider (blue/green), and rollback at 2 failed checks.
func NewCanary(ns, name string, p serinv1.Provider) *serinv1.Canary {
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			Provider:                p,
			TargetRef:               serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			ProgressDeadlineSeconds: new(int32(120)),
			Service: serinv1.CanaryService{
				Port:       servicePort,
				TargetPort: intstr.FromInt32(appPort),
				Hosts:      []string{name + ".example.com"},
			},
			Analysis: serinv1.CanaryAnalysis{
				Interval:  "10s",
				Threshold: 2,
				Metrics: []serinv1.CanaryMetric{
					{Name: serinv1.MetricRequestSuccessRate, Interval: "15s", ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}},
					{Name: serinv1.MetricRequestDuration, Interval: "15s", ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(500.0)}},
				},
			},
		},
	}
	if p == serinv1.ProviderKubernetes {
		c.Spec.Analysis.Iterations = 2
	} else {
		c.Spec.Analysis.StepWeight = 25
		c.Spec.Analysis.MaxWeight = 50
	}
	if p == serinv1.ProviderNGINX {
		c.Spec.IngressRef = &serinv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: name}
	}
	if strings.HasPrefix(string(p), string(serinv1.ProviderGatewayAPI)) {
		// The Gateway need not exist: no gateway controller runs here.
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
	}
	return c
}

// CreateApp creates namespace ns with the sample app name (a Deployment of
// two replicas, the Ingress the nginx provider needs) and its Canary c.
func (s *Stack) CreateApp(ctx context.Context, c *serinv1.Canary) error {
	ns, name := c.Namespace, c.Spec.TargetRef.Name
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		NewDeployment(ns, name, 2),
	}
	if c.Spec.IngressRef != nil {
		objs = append(objs, ingress(ns, name))
	}
	objs = append(objs, c)
	for _, o := range objs {
		if err := s.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// Release sets a new image on the app's Deployment, declaring how the new
// version behaves.
func (s *Stack) Release(ctx context.Context, ns, name, image string, b Behaviour) error {
	var d appsv1.Deployment
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	annotations := map[string]string{telemetry.ErrorRatioAnnotation: fmt.Sprint(b.ErrorRatio)}
	if b.Latency > 0 {
		annotations[telemetry.LatencyAnnotation] = b.Latency.String()
	}
	d.Spec.Template.Annotations = annotations
	return s.Client.Patch(ctx, &d, patch)
}

// NewDeployment is the sample app: replicas pods labelled app=name that
// run AppImage and listen on port 8080 (http).
func NewDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: AppImage,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort}},
				}}},
			},
		},
	}
}

// ingress is the app's Ingress, which the nginx provider copies for the
// canary.
func ingress(ns, name string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.IngressSpec{
			IngressClassName: new("nginx"),
			Rules: []networkingv1.IngressRule{{
				Host: name + ".example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &prefix,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: servicePort}}},
					}},
				}},
			}},
		},
	}
}

// Image is the image of the first container of Deployment ns/name.
func (s *Stack) Image(ctx context.Context, ns, name string) (string, error) {
	var d appsv1.Deployment
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		return "", err
	}
	return d.Spec.Template.Spec.Containers[0].Image, nil
}
