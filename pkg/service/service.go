// Package service builds and applies the apex, primary and canary Services
// of a Canary. Routers send traffic to these Services; the plain-Service
// (kubernetes) router switches the apex selector itself.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/internal/owned"
	"github.com/serin-dev/serin/pkg/versions"
)

// Names of a Canary's Services.
type Names struct {
	Apex, Primary, Canary string
}

// NamesOf returns the Service names: service.name (or the target's name),
// with -primary and -canary suffixes.
func NamesOf(c *serinv1.Canary) Names {
	apex := c.Spec.Service.Name
	if apex == "" {
		apex = c.Spec.TargetRef.Name
	}
	return Names{Apex: apex, Primary: apex + "-primary", Canary: apex + "-canary"}
}

// Selector is the label that tells primary pods from canary pods: canary
// pods have Key=Value, primary pods Key=Value-primary.
type Selector struct {
	Key, Value string
}

// Primary is the primary pods' label value.
func (s Selector) Primary() map[string]string { return map[string]string{s.Key: s.Value + "-primary"} }

// Canary is the canary pods' label value.
func (s Selector) Canary() map[string]string { return map[string]string{s.Key: s.Value} }

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
func Desired(c *serinv1.Canary, role Role, sel Selector, apexToCanary bool, ports []corev1.ContainerPort) *corev1ac.ServiceApplyConfiguration {
	names := NamesOf(c)
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
	annotations := map[string]string{}
	if meta != nil {
		maps.Copy(labels, meta.Labels)
		maps.Copy(annotations, meta.Annotations)
	}

	spec := corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeClusterIP).
		WithSelector(selector).
		WithPorts(servicePorts(s, ports)...)
	svc := corev1ac.Service(name, c.Namespace).
		WithLabels(labels).
		WithOwnerReferences(OwnerReference(c)).
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

// OwnerReference makes the Canary the controller of an object Serin applies,
// so it is garbage-collected with the Canary.
func OwnerReference(c *serinv1.Canary) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(serinv1.GroupVersion.String()).
		WithKind(serinv1.CanaryKind).
		WithName(c.Name).
		WithUID(c.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// AdoptAnnotation set to "true" on a Service that no Canary controls hands
// it over: a Canary whose Service has that name takes it. Serin sets it on
// the apex Service it hands back when a Canary is deleted, so that a new
// Canary can take it again.
const AdoptAnnotation = "serin.dev/adopt"

// ErrNotOwned is returned when a Service of the name a Canary wants exists
// and was not created by it: Serin never takes over a Service by its name
// alone.
var ErrNotOwned = errors.New("not controlled by the Canary")

// mayWrite refuses to write live unless the Canary that desired belongs to
// controls it, or it is handed over with AdoptAnnotation.
func mayWrite(live *corev1.Service, desired *corev1ac.ServiceApplyConfiguration) error {
	owner := metav1.GetControllerOf(live)
	for _, ref := range desired.OwnerReferences {
		if owner != nil && ref.UID != nil && owner.UID == *ref.UID {
			return nil
		}
	}
	if owner == nil && live.Annotations[AdoptAnnotation] == "true" {
		return nil
	}
	return fmt.Errorf("%w: Service %s/%s exists and was not created by this Canary; delete it, or annotate it %s=true to hand it over", ErrNotOwned, live.Namespace, live.Name, AdoptAnnotation)
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

// Apply writes desired unless the live Service, as Reader has it, already
// matches it. It reports whether it wrote.
func (a *Applier) Apply(ctx context.Context, desired *corev1ac.ServiceApplyConfiguration) (bool, error) {
	var live corev1.Service
	err := a.Reader.Get(ctx, client.ObjectKey{Namespace: *desired.Namespace, Name: *desired.Name}, &live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("reading Service %s: %w", *desired.Name, err)
	default:
		if err := mayWrite(&live, desired); err != nil {
			return false, err
		}
		if matches(&live, desired) {
			return false, nil
		}
	}
	if err := a.write(ctx, desired); err != nil {
		return false, err
	}
	return true, nil
}

// ApplyVerified is Apply for a Service whose state must be known for sure
// (the apex Service a router switches). It decides from the cached Service
// only when the cache holds the version this Applier last wrote or read,
// and otherwise reads around the cache with server. It returns the Service
// as the server holds it after the call: the response to its write, or
// what it read.
func (a *Applier) ApplyVerified(ctx context.Context, desired *corev1ac.ServiceApplyConfiguration, server client.Reader) (*corev1.Service, error) {
	key := client.ObjectKey{Namespace: *desired.Namespace, Name: *desired.Name}
	live := &corev1.Service{}
	err := a.Reader.Get(ctx, key, live)
	if err == nil && !a.Versions.Current(live) || apierrors.IsNotFound(err) {
		// The cache has not caught up with the last write, someone else
		// wrote since, or this process has not seen the Service yet.
		err = server.Get(ctx, key, live)
		if err == nil {
			a.Versions.Record(live)
		}
	}
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading Service %s: %w", key.Name, err)
	default:
		if err := mayWrite(live, desired); err != nil {
			return nil, err
		}
		if matches(live, desired) {
			return live, nil
		}
	}
	if err := a.write(ctx, desired); err != nil {
		return nil, err
	}
	// The apply configuration now holds the server's response.
	stored := &corev1.Service{}
	if err := convert(desired, stored); err != nil {
		return nil, fmt.Errorf("reading the applied Service %s: %w", key.Name, err)
	}
	a.Versions.Record(stored)
	return stored, nil
}

// write applies desired. After a failed write what the server holds is
// unknown, so the Service's version is forgotten.
func (a *Applier) write(ctx context.Context, desired *corev1ac.ServiceApplyConfiguration) error {
	if err := a.Client.Apply(ctx, desired, client.FieldOwner(a.FieldManager), client.ForceOwnership); err != nil {
		a.Versions.Forget(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: *desired.Namespace, Name: *desired.Name}})
		return fmt.Errorf("applying Service %s: %w", *desired.Name, err)
	}
	return nil
}

func convert(in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
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
func (a *Applier) Release(ctx context.Context, c *serinv1.Canary, sel *Selector) error {
	names := NamesOf(c)
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
		if err := owned.Delete(ctx, a.Reader, a.Client, c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name}}); err != nil {
			return err
		}
	}
	return nil
}
