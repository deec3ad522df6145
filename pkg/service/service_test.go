package service

import (
	"errors"
	"k8s.io/utils/ptr"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/apply"
	"github.com/serin-dev/serin/pkg/naming"
)

func canary(mod func(*serinv1.CanaryService)) *serinv1.Canary {
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "uid-1"},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{Kind: "Deployment", Name: "web"},
			Service:   serinv1.CanaryService{Port: 80},
		},
	}
	if mod != nil {
		mod(&c.Spec.Service)
	}
	return c
}

var sel = naming.Selector{Key: "app", Value: "web"}

func TestDesired(t *testing.T) {
	containerPorts := []corev1.ContainerPort{
		{Name: "metrics", ContainerPort: 9090},
		{Name: "http", ContainerPort: 8080},
		{ContainerPort: 7000, Protocol: corev1.ProtocolUDP},
	}
	tests := []struct {
		name         string
		mod          func(*serinv1.CanaryService)
		role         Role
		apexToCanary bool
		wantName     string
		wantSelector string
		wantPorts    []string // name:port->target/protocol
		wantLabels   map[string]string
		wantAnnots   map[string]string
		// checked when set
		wantClusterIP, wantTrafficDistribution string
	}{
		{
			name: "apex selects the primary", role: RoleApex, wantName: "web", wantSelector: "web-primary",
			wantPorts: []string{"http:80->80/TCP"}, wantLabels: map[string]string{"app": "web"},
		},
		{
			name: "apex selects the canary during a blue/green promotion", role: RoleApex, apexToCanary: true,
			wantName: "web", wantSelector: "web", wantPorts: []string{"http:80->80/TCP"}, wantLabels: map[string]string{"app": "web"},
		},
		{
			name: "primary and canary Services are named after service.name",
			mod:  func(s *serinv1.CanaryService) { s.Name = "frontend" }, role: RolePrimary,
			wantName: "frontend-primary", wantSelector: "web-primary", wantPorts: []string{"http:80->80/TCP"},
			wantLabels: map[string]string{"app": "frontend-primary"},
		},
		{
			name: "port name, target port and app protocol",
			mod: func(s *serinv1.CanaryService) {
				s.PortName, s.TargetPort, s.AppProtocol = "grpc", intstr.FromString("grpc"), "grpc"
			},
			role: RoleCanary, wantName: "web-canary", wantSelector: "web", wantPorts: []string{"grpc:80->grpc/TCP"},
			wantLabels: map[string]string{"app": "web-canary"},
		},
		{
			name: "port discovery adds the other container ports in order",
			mod:  func(s *serinv1.CanaryService) { s.TargetPort, s.PortDiscovery = intstr.FromInt32(8080), true },
			role: RoleCanary, wantName: "web-canary", wantSelector: "web",
			wantPorts:  []string{"http:80->8080/TCP", "tcp-7000:7000->7000/UDP", "metrics:9090->9090/TCP"},
			wantLabels: map[string]string{"app": "web-canary"},
		},
		{
			name: "custom metadata per Service",
			mod: func(s *serinv1.CanaryService) {
				s.Apex = &serinv1.CustomMetadata{Labels: map[string]string{"tier": "edge"}, Annotations: map[string]string{"a": "b"}}
			},
			role: RoleApex, wantName: "web", wantSelector: "web-primary", wantPorts: []string{"http:80->80/TCP"},
			wantLabels: map[string]string{"app": "web", "tier": "edge"}, wantAnnots: map[string]string{"a": "b"},
		},
		{
			name: "unmanagedMetadata keys are left to others",
			mod: func(s *serinv1.CanaryService) {
				s.Primary = &serinv1.CustomMetadata{Labels: map[string]string{"tier": "edge", "team": "x"}, Annotations: map[string]string{"a": "b", "owned-elsewhere": "v"}}
				s.UnmanagedMetadata = &serinv1.UnmanagedMetadata{Labels: []string{"team"}, Annotations: []string{"owned-elsewhere"}}
			},
			role: RolePrimary, wantName: "web-primary", wantSelector: "web-primary", wantPorts: []string{"http:80->80/TCP"},
			wantLabels: map[string]string{"app": "web-primary", "tier": "edge"}, wantAnnots: map[string]string{"a": "b"},
		},
		{
			name: "headless Services with a traffic distribution",
			mod:  func(s *serinv1.CanaryService) { s.Headless, s.TrafficDistribution = true, "PreferSameZone" },
			role: RoleCanary, wantName: "web-canary", wantSelector: "web", wantPorts: []string{"http:80->80/TCP"},
			wantLabels:    map[string]string{"app": "web-canary"},
			wantClusterIP: "None", wantTrafficDistribution: "PreferSameZone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Desired(canary(tt.mod), tt.role, sel, tt.apexToCanary, containerPorts)
			if *got.Name != tt.wantName || *got.Namespace != "apps" {
				t.Errorf("name %s/%s, want apps/%s", *got.Namespace, *got.Name, tt.wantName)
			}
			if s := got.Spec.Selector["app"]; s != tt.wantSelector || len(got.Spec.Selector) != 1 {
				t.Errorf("selector %v, want app=%s", got.Spec.Selector, tt.wantSelector)
			}
			var ports []string
			for _, p := range got.Spec.Ports {
				ports = append(ports, *p.Name+":"+itoa(*p.Port)+"->"+p.TargetPort.String()+"/"+string(*p.Protocol))
			}
			if !slices.Equal(ports, tt.wantPorts) {
				t.Errorf("ports %v, want %v", ports, tt.wantPorts)
			}
			if !maps.Equal(got.Labels, tt.wantLabels) || !maps.Equal(got.Annotations, tt.wantAnnots) {
				t.Errorf("labels %v annotations %v, want %v %v", got.Labels, got.Annotations, tt.wantLabels, tt.wantAnnots)
			}
			if tt.wantClusterIP != "" && ptr.Deref(got.Spec.ClusterIP, "") != tt.wantClusterIP {
				t.Errorf("clusterIP %v, want %s", got.Spec.ClusterIP, tt.wantClusterIP)
			}
			if tt.wantTrafficDistribution != "" && ptr.Deref(got.Spec.TrafficDistribution, "") != tt.wantTrafficDistribution {
				t.Errorf("trafficDistribution %v, want %s", got.Spec.TrafficDistribution, tt.wantTrafficDistribution)
			}
			if len(got.OwnerReferences) != 1 || *got.OwnerReferences[0].UID != "uid-1" || !*got.OwnerReferences[0].Controller {
				t.Errorf("owner references %v", got.OwnerReferences)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	c := canary(func(s *serinv1.CanaryService) { s.AppProtocol = "http" })
	desired := Desired(c, RoleApex, sel, false, nil)
	live := func(mod func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Labels:          map[string]string{"app": "web", "added-by": "someone"},
				OwnerReferences: []metav1.OwnerReference{{UID: "uid-1", Controller: new(true)}},
			},
			Spec: corev1.ServiceSpec{
				Type:      corev1.ServiceTypeClusterIP,
				ClusterIP: "10.0.0.7",
				Selector:  map[string]string{"app": "web-primary"},
				Ports:     []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80), AppProtocol: new("http")}},
			},
		}
		if mod != nil {
			mod(s)
		}
		return s
	}
	tests := []struct {
		name string
		live *corev1.Service
		want bool
	}{
		{"fields others set are ignored", live(nil), true},
		{"a changed selector differs", live(func(s *corev1.Service) { s.Spec.Selector["app"] = "web" }), false},
		{"a changed port differs", live(func(s *corev1.Service) { s.Spec.Ports[0].Port = 81 }), false},
		{"a missing app protocol differs", live(func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = nil }), false},
		{"a missing label differs", live(func(s *corev1.Service) { delete(s.Labels, "app") }), false},
		{"another controller differs", live(func(s *corev1.Service) { s.OwnerReferences = nil }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matches(tt.live, desired); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestMayWrite(t *testing.T) {
	if ErrNotOwned != apply.ErrNotOwned || AdoptAnnotation != apply.AdoptAnnotation {
		t.Fatal("service.ErrNotOwned and service.AdoptAnnotation are not apply's")
	}
	desired := Desired(canary(nil), RoleApex, sel, false, nil)
	live := func(refs []metav1.OwnerReference, annotations map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: "42", OwnerReferences: refs, Annotations: annotations}}
	}
	ours := []metav1.OwnerReference{{Kind: "Canary", Name: "web", UID: "uid-1", Controller: new(true)}}
	adopt := map[string]string{AdoptAnnotation: "true"}

	err := serviceRef(desired).MayWrite(live(nil, nil))
	if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "Service apps/web exists and was not created by this Canary; delete it, or annotate it serin.dev/adopt=true to hand it over") {
		t.Errorf("a Service nobody controls: %v", err)
	}
	for name, l := range map[string]*corev1.Service{"ours": live(ours, nil), "handed over": live(nil, adopt)} {
		if err := serviceRef(desired).MayWrite(l); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Only the write that takes a handed-over Service carries the
	// resourceVersion it was read at: apply.TestApply.
}
