package apply

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestMayWrite(t *testing.T) {
	const canary types.UID = "canary-uid"
	controller := func(uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "serin.dev/v1beta1", Kind: "Canary", Name: "other", UID: uid, Controller: new(true)}}
	}
	adopt := map[string]string{AdoptAnnotation: "true"}
	for _, tt := range []struct {
		name       string
		refs       []metav1.OwnerReference
		ann        map[string]string
		wantErr    string // empty: may write
		handedOver bool
	}{
		{name: "controlled by the Canary", refs: controller(canary)},
		{name: "controlled by the Canary and annotated", refs: controller(canary), ann: adopt},
		{name: "no owner", wantErr: "Ingress apps/web exists and was not created by this Canary; delete it, or annotate it serin.dev/adopt=true to hand it over"},
		{name: "no owner, annotation not true", ann: map[string]string{AdoptAnnotation: "yes"}, wantErr: "annotate it serin.dev/adopt=true"},
		{name: "handed over", ann: adopt, handedOver: true},
		{name: "a non-controller reference to the Canary", refs: []metav1.OwnerReference{{Kind: "Canary", Name: "web", UID: canary}}, wantErr: "was not created by this Canary"},
		{name: "handed over with a non-controller owner", refs: []metav1.OwnerReference{{Kind: "ConfigMap", Name: "x", UID: "cm"}}, ann: adopt, handedOver: true},
		{name: "another controller", refs: controller("other-uid"), wantErr: "(it is controlled by Canary other); delete it, or remove that controller reference"},
		{name: "another controller, annotated", refs: controller("other-uid"), ann: adopt, wantErr: "controlled by Canary other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			live := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", OwnerReferences: tt.refs, Annotations: tt.ann}}
			err := MayWrite(live, canary, "Ingress")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("MayWrite = %v, want nil", err)
			case tt.wantErr != "" && (!errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("MayWrite = %v, want ErrNotOwned containing %q", err, tt.wantErr)
			}
			if got := HandedOver(live, canary); got != tt.handedOver {
				t.Errorf("HandedOver = %v, want %v", got, tt.handedOver)
			}
		})
	}
	if err := MayWrite(&corev1.Service{ObjectMeta: metav1.ObjectMeta{OwnerReferences: controller("")}}, "", "Service"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("an empty owner UID matched an empty controller UID: %v", err)
	}
}
