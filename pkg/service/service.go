// Package service builds and applies the apex, primary and canary Services
// of a Canary. Routers send traffic to these Services; the plain-Service
// (kubernetes) router switches the apex selector itself.
package service

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
	"github.com/serin-dev/serin/pkg/versions"
)

// Role is which Service of a Canary.
type Role string

// The three Services.
const (
	RoleApex    Role = "apex"
	RolePrimary Role = "primary"
	RoleCanary  Role = "canary"
)

// Desired returns the apply configuration of one Service. The apex selects
// the primary pods unless apexToCanary is set (blue/green promotion with the
// kubernetes router). ports are the target's container ports, used with
// service.portDiscovery.
func Desired(c *serinv1.Canary, role Role, sel naming.Selector, apexToCanary bool, ports []corev1.ContainerPort) *corev1ac.ServiceApplyConfiguration {
	names := naming.ServicesOf(c)
	s := c.Spec.Service
	var (
		name     string
		selector map[string]string
		meta     *serinv1.CustomMetadata
	)
	switch role {
	case RoleApex:
		name, meta, selector = names.Apex, s.Apex, sel.Primary()
		if apexToCanary {
			selector = sel.Canary()
		}
	case RolePrimary:
		name, meta, selector = names.Primary, s.Primary, sel.Primary()
	default:
		name, meta, selector = names.Canary, s.Canary, sel.Canary()
	}

	labels := map[string]string{sel.Key: name}
	customLabels, annotations := s.ManagedMetadata(meta)
	maps.Copy(labels, customLabels)

	spec := corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeClusterIP).
		WithSelector(selector).
		WithPorts(servicePorts(s, ports)...)
	if s.Headless {
		spec.WithClusterIP(corev1.ClusterIPNone)
	}
	if s.TrafficDistribution != "" {
		spec.WithTrafficDistribution(s.TrafficDistribution)
	}
	svc := corev1ac.Service(name, c.Namespace).
		WithLabels(labels).
		WithOwnerReferences(apply.ControllerRefApply(c)).
		WithSpec(spec)
	if len(annotations) > 0 {
		svc.WithAnnotations(annotations)
	}
	return svc
}

func servicePorts(s serinv1.CanaryService, containerPorts []corev1.ContainerPort) []*corev1ac.ServicePortApplyConfiguration {
	portName := s.PortName
	if portName == "" {
		portName = "http"
	}
	target := s.TargetPort
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(s.Port)
	}
	main := corev1ac.ServicePort().
		WithName(portName).
		WithProtocol(corev1.ProtocolTCP).
		WithPort(s.Port).
		WithTargetPort(target)
	if s.AppProtocol != "" {
		main.WithAppProtocol(s.AppProtocol)
	}
	ports := []*corev1ac.ServicePortApplyConfiguration{main}
	if !s.PortDiscovery {
		return ports
	}
	// Every other container port is exposed as is, named after the
	// container port (or tcp-<port>), in a stable order.
	extra := append([]corev1.ContainerPort(nil), containerPorts...)
	sort.Slice(extra, func(i, j int) bool { return extra[i].ContainerPort < extra[j].ContainerPort })
	seen := map[int32]bool{s.Port: true}
	if target.Type == intstr.Int {
		seen[target.IntVal] = true
	}
	for _, p := range extra {
		if seen[p.ContainerPort] || (target.Type == intstr.String && p.Name == target.StrVal) {
			continue
		}
		seen[p.ContainerPort] = true
		name := p.Name
		if name == "" || name == portName {
			name = fmt.Sprintf("tcp-%d", p.ContainerPort)
		}
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		ports = append(ports, corev1ac.ServicePort().
			WithName(strings.ToLower(name)).
			WithProtocol(protocol).
			WithPort(p.ContainerPort).
			WithTargetPort(intstr.FromInt32(p.ContainerPort)))
	}
	return ports
}

// AdoptAnnotation set to "true" on a Service that no Canary controls hands
// it over: a Canary whose Service has that name takes it. Serin sets it on
// the apex Service it hands back when a Canary is deleted, so that a new
// Canary can take it again. The rule is apply.AdoptAnnotation's, shared
// with the routing objects.
const AdoptAnnotation = apply.AdoptAnnotation

// ErrNotOwned is returned when a Service of the name a Canary wants exists
// and was not created by it: Serin never takes over a Service by its name
// alone. It is apply.ErrNotOwned, which the routers return too.
var ErrNotOwned = apply.ErrNotOwned

// serviceRef names the Service desired applies, owned by the Canary whose
// controller reference it carries.
func serviceRef(desired *corev1ac.ServiceApplyConfiguration) apply.Ref {
	return apply.Ref{Kind: "Service", Namespace: *desired.Namespace, Name: *desired.Name, Owner: &metav1.ObjectMeta{UID: desiredOwner(desired)}}
}

// serviceWrite applies desired unless the live Service matches it.
func serviceWrite(desired *corev1ac.ServiceApplyConfiguration) apply.Write[*corev1.Service] {
	return apply.Write[*corev1.Service]{
		Ref:      serviceRef(desired),
		UpToDate: func(live *corev1.Service) (bool, error) { return matches(live, desired), nil },
		Desired:  func() (*unstructured.Unstructured, error) { return apply.JSONBody(desired) },
	}
}

// desiredOwner is the UID of the controller reference desired carries.
func desiredOwner(desired *corev1ac.ServiceApplyConfiguration) types.UID {
	for _, ref := range desired.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.UID != nil {
			return *ref.UID
		}
	}
	return ""
}

// Applier applies Services with server-side apply, skipping the write when
// the live object already has every field Serin sets.
type Applier struct {
	// Reader may be the informer cache.
	Reader       client.Reader
	Client       client.Client
	FieldManager string
	// Versions holds, per Service, the resourceVersion this process last
	// wrote or read around the cache: a cached Service at that version is
	// what the server holds. The controller shares it with the predicate
	// that skips the watch events of its own writes.
	Versions *versions.Tracker
}

func (a *Applier) applier() *apply.Applier {
	return &apply.Applier{Reader: a.Reader, Client: a.Client, FieldManager: a.FieldManager, Versions: a.Versions}
}

// Apply writes desired unless the live Service, as Reader has it, already
// matches it. It reports whether it wrote.
func (a *Applier) Apply(ctx context.Context, desired *corev1ac.ServiceApplyConfiguration) (bool, error) {
	w, ap := serviceWrite(desired), a.applier()
	live := &corev1.Service{}
	exists, err := ap.Read(ctx, w.Ref, live)
	if err != nil {
		return false, err
	}
	return apply.Apply(ctx, ap, w, live, exists)
}

// ApplyVerified is Apply for a Service whose state must be known for sure
// (the apex Service a router switches). It decides from the cached Service
// only when the cache holds the version this Applier last wrote or read,
// and otherwise reads around the cache with server. It returns the Service
// as the server holds it after the call: the response to its write, or
// what it read.
func (a *Applier) ApplyVerified(ctx context.Context, desired *corev1ac.ServiceApplyConfiguration, server client.Reader) (*corev1.Service, error) {
	w, ap := serviceWrite(desired), a.applier()
	w.Decode = true
	live := &corev1.Service{}
	exists, err := ap.ReadVerified(ctx, w.Ref, live, server)
	if err != nil {
		return nil, err
	}
	if _, err := apply.Apply(ctx, ap, w, live, exists); err != nil {
		return nil, err
	}
	return live, nil
}

// matches is true when live already carries every field of desired. Fields
// that others add (cluster IPs, extra labels, defaults) are ignored.
func matches(live *corev1.Service, desired *corev1ac.ServiceApplyConfiguration) bool {
	if !subset(desired.Labels, live.Labels) || !subset(desired.Annotations, live.Annotations) {
		return false
	}
	if len(desired.OwnerReferences) != 0 {
		want := desired.OwnerReferences[0]
		found := false
		for _, ref := range live.OwnerReferences {
			if ref.UID == *want.UID && ref.Controller != nil && *ref.Controller {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	spec := desired.Spec
	if live.Spec.Type != *spec.Type || !reflect.DeepEqual(live.Spec.Selector, spec.Selector) || len(live.Spec.Ports) != len(spec.Ports) {
		return false
	}
	if spec.ClusterIP != nil && live.Spec.ClusterIP != *spec.ClusterIP {
		return false
	}
	if spec.TrafficDistribution != nil && ptr.Deref(live.Spec.TrafficDistribution, "") != *spec.TrafficDistribution {
		return false
	}
	for i, p := range spec.Ports {
		l := live.Spec.Ports[i]
		if l.Name != *p.Name || l.Port != *p.Port || l.Protocol != *p.Protocol || l.TargetPort != *p.TargetPort {
			return false
		}
		if (p.AppProtocol == nil) != (l.AppProtocol == nil) || p.AppProtocol != nil && *p.AppProtocol != *l.AppProtocol {
			return false
		}
	}
	return true
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// Release hands the apex Service back to the user on revertOnDeletion: it
// selects the target's pods (when sel is known) and is no longer owned by
// the Canary, so it outlives it. The primary and canary Services are deleted.
func (a *Applier) Release(ctx context.Context, c *serinv1.Canary, sel *naming.Selector) error {
	names := naming.ServicesOf(c)
	var apex corev1.Service
	// A Service the Canary does not control was never its apex: it is
	// left as it is, not marked adoptable.
	if err := a.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: names.Apex}, &apex); err == nil && metav1.IsControlledBy(&apex, c) {
		patch := client.MergeFrom(apex.DeepCopy())
		if sel != nil {
			apex.Spec.Selector = sel.Canary()
		}
		var refs []metav1.OwnerReference
		for _, ref := range apex.OwnerReferences {
			if ref.UID != c.UID {
				refs = append(refs, ref)
			}
		}
		apex.OwnerReferences = refs
		if apex.Annotations == nil {
			apex.Annotations = map[string]string{}
		}
		apex.Annotations[AdoptAnnotation] = "true"
		if err := a.Client.Patch(ctx, &apex, patch); err != nil {
			return fmt.Errorf("releasing Service %s: %w", names.Apex, err)
		}
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Service %s: %w", names.Apex, err)
	}
	for _, name := range []string{names.Primary, names.Canary} {
		if err := a.applier().Delete(ctx, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name}}); err != nil {
			return err
		}
	}
	return nil
}
