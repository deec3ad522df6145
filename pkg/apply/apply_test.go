package apply

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/versions"
)

var errStrict = errors.New("invalid canary setup")

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testCanary() *serinv1.Canary {
	return &serinv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", UID: "uid-1"}}
}

// requests counts the writes that reach the server and keeps the body of
// the last apply.
type requests struct {
	applies, deletes int
	body             map[string]any
	deleteUID        *types.UID
}

func (r *requests) client(t *testing.T, objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			r.applies++
			raw, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			r.body = nil
			if err := json.Unmarshal(raw, &r.body); err != nil {
				t.Fatal(err)
			}
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			r.deletes++
			o := &client.DeleteOptions{}
			o.ApplyOptions(opts)
			if o.Preconditions != nil {
				r.deleteUID = o.Preconditions.UID
			}
			return c.Delete(ctx, obj, opts...)
		},
	}).Build()
}

// configMap is a live ConfigMap apps/web with the given controller (nil:
// none), annotations and data.
func configMap(controller *metav1.OwnerReference, annotations map[string]string, data string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", Annotations: annotations},
		Data:       map[string]string{"k": data},
	}
	if controller != nil {
		cm.OwnerReferences = []metav1.OwnerReference{*controller}
	}
	return cm
}

func desiredConfigMap(data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", OwnerReferences: []metav1.OwnerReference{ControllerRef(testCanary())}},
		Data:       map[string]string{"k": data},
	}
}

func TestApply(t *testing.T) {
	ours := ControllerRef(testCanary())
	other := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "legacy", UID: "uid-2", Controller: new(true)}
	hashOf := func(data string) string {
		h, err := Hash(desiredConfigMap(data))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	adopt := map[string]string{AdoptAnnotation: "true"}

	for _, tt := range []struct {
		name string
		live *corev1.ConfigMap // nil: missing
		data string            // what is applied
		// change adjusts the Write.
		change      func(*Write[*corev1.ConfigMap])
		wantWrites  int
		wantErr     error
		wantMessage string
		// wantVersion is the resourceVersion the write must carry.
		wantVersion bool
	}{
		{name: "missing: created", data: "a", wantWrites: 1},
		{name: "unchanged: no write", live: configMap(&ours, map[string]string{HashAnnotation: hashOf("a")}, "a"), data: "a"},
		{name: "changed: one write", live: configMap(&ours, map[string]string{HashAnnotation: hashOf("a")}, "a"), data: "b", wantWrites: 1},
		{name: "same hash, but up to date says no: one write", live: configMap(&ours, map[string]string{HashAnnotation: hashOf("a")}, "x"), data: "a", wantWrites: 1,
			change: func(w *Write[*corev1.ConfigMap]) {
				w.UpToDate = func(live *corev1.ConfigMap) (bool, error) { return live.Data["k"] == "a", nil }
			}},
		{name: "up to date fails: the error, no write", live: configMap(&ours, nil, "a"), data: "a", wantErr: errStrict,
			change: func(w *Write[*corev1.ConfigMap]) {
				w.UpToDate = func(*corev1.ConfigMap) (bool, error) { return false, errStrict }
			}},
		{name: "the field manager lost the field: one write", live: configMap(&ours, map[string]string{HashAnnotation: hashOf("a")}, "a"), data: "a", wantWrites: 1,
			change: func(w *Write[*corev1.ConfigMap]) { w.ManagedPath = []string{"f:data"} }},
		{name: "create only: an existing object is left", live: configMap(&ours, nil, "a"), data: "b",
			change: func(w *Write[*corev1.ConfigMap]) { w.CreateOnly = true }},
		{name: "not owned: refused", live: configMap(nil, nil, "a"), data: "a", wantErr: ErrNotOwned,
			wantMessage: "ConfigMap apps/web exists and was not created by this Canary; delete it, or annotate it serin.dev/adopt=true to hand it over"},
		{name: "controlled by another: refused", live: configMap(&other, adopt, "a"), data: "a", wantErr: ErrNotOwned,
			wantMessage: "ConfigMap apps/web exists and was not created by this Canary (it is controlled by Deployment legacy)"},
		{name: "create only still refuses", live: configMap(nil, nil, "a"), data: "a", wantErr: ErrNotOwned,
			change: func(w *Write[*corev1.ConfigMap]) { w.CreateOnly = true }},
		{name: "handed over: taken as read", live: configMap(nil, adopt, "a"), data: "a", wantWrites: 1, wantVersion: true},
		{name: "handed over with the same hash: still taken", live: configMap(nil, map[string]string{AdoptAnnotation: "true", HashAnnotation: hashOf("a")}, "a"), data: "a", wantWrites: 1, wantVersion: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			var req requests
			var objs []client.Object
			if tt.live != nil {
				objs = append(objs, tt.live)
			}
			c := req.client(t, objs...)
			scheme := c.Scheme()
			a := &Applier{Reader: c, Client: c, Versions: versions.New(scheme)}
			w := Write[*corev1.ConfigMap]{
				Ref:  Ref{Kind: "ConfigMap", Namespace: "apps", Name: "web", Owner: testCanary()},
				Hash: hashOf(tt.data),
				Desired: func() (*unstructured.Unstructured, error) {
					return Body(desiredConfigMap(tt.data), schema.GroupVersionKind{})
				},
				Decode: true,
			}
			if tt.change != nil {
				tt.change(&w)
			}
			live := &corev1.ConfigMap{}
			exists, err := a.Read(ctx, w.Ref, live)
			if err == nil {
				var wrote bool
				wrote, err = Apply(ctx, a, w, live, exists)
				if wrote != (req.applies > 0) {
					t.Errorf("Apply reports wrote=%v after %d writes", wrote, req.applies)
				}
			}
			if req.applies != tt.wantWrites {
				t.Errorf("%d writes, want %d", req.applies, tt.wantWrites)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Apply: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Apply = %v, want %v", err, tt.wantErr)
			case tt.wantErr != nil:
				if !strings.Contains(err.Error(), tt.wantMessage) {
					t.Errorf("Apply = %q, want it to say %q", err, tt.wantMessage)
				}
				return
			}
			if tt.wantWrites == 0 {
				return
			}
			md, _ := req.body["metadata"].(map[string]any)
			if rv, _ := md["resourceVersion"].(string); (rv != "") != tt.wantVersion || tt.wantVersion && rv != tt.live.ResourceVersion {
				t.Errorf("the write carries resourceVersion %q; want it (%v) as read, %q", rv, tt.wantVersion, tt.live.ResourceVersion)
			}
			if _, ok := req.body["status"]; ok {
				t.Error("the write carries a status")
			}
			// The response is decoded and recorded.
			if live.Data["k"] != tt.data || live.Annotations[HashAnnotation] != w.Hash || !Controlled(live, "uid-1") {
				t.Errorf("after the write the object is %+v", live)
			}
			if !a.Versions.Current(live) {
				t.Error("the written version is not recorded")
			}
		})
	}
}

// TestApplyForgetsAfterAFailedWrite: what the server holds is unknown then.
func TestApplyForgetsAfterAFailedWrite(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			return apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "web", errors.New("changed"))
		},
	}).Build()
	a := &Applier{Reader: c, Client: c, Versions: versions.New(c.Scheme())}
	known := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web", ResourceVersion: "7"}}
	a.Versions.Record(known)
	w := Write[*corev1.ConfigMap]{
		Ref: Ref{Kind: "ConfigMap", Namespace: "apps", Name: "web", Owner: testCanary()},
		Desired: func() (*unstructured.Unstructured, error) {
			return Body(desiredConfigMap("a"), schema.GroupVersionKind{})
		},
	}
	_, err := Apply(ctx, a, w, &corev1.ConfigMap{}, false)
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "applying ConfigMap web") {
		t.Fatalf("Apply = %v, want the conflict, naming the object", err)
	}
	if a.Versions.Current(known) {
		t.Error("the version is still recorded after a failed write")
	}
}

func TestDelete(t *testing.T) {
	ours := ControllerRef(testCanary())
	other := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "legacy", UID: "uid-2", Controller: new(true)}
	for _, tt := range []struct {
		name       string
		live       *corev1.ConfigMap
		wantDelete bool
	}{
		{name: "missing: nothing to do"},
		{name: "controlled: deleted with its UID as precondition", live: configMap(&ours, nil, "a"), wantDelete: true},
		{name: "not owned: left", live: configMap(nil, nil, "a")},
		{name: "handed over: left", live: configMap(nil, map[string]string{AdoptAnnotation: "true"}, "a")},
		{name: "controlled by another: left", live: configMap(&other, nil, "a")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			var req requests
			var objs []client.Object
			if tt.live != nil {
				tt.live.UID = "cm-uid"
				objs = append(objs, tt.live)
			}
			c := req.client(t, objs...)
			a := &Applier{Reader: c, Client: c}
			if err := a.Delete(ctx, testCanary(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}); err != nil {
				t.Fatal(err)
			}
			if (req.deletes == 1) != tt.wantDelete || req.deletes > 1 {
				t.Fatalf("%d deletes, want one: %v", req.deletes, tt.wantDelete)
			}
			if !tt.wantDelete {
				return
			}
			if req.deleteUID == nil || *req.deleteUID != "cm-uid" {
				t.Errorf("the delete's UID precondition is %v, want cm-uid", req.deleteUID)
			}
			err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "web"}, &corev1.ConfigMap{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("after the delete: %v", err)
			}
		})
	}
}

// TestDeleteReadKeepsTheReadUID: the delete of an object as read carries
// that object's UID, so that one recreated under the same name since is
// not hit (the apiserver enforces it; the fake client does not).
func TestDeleteReadKeepsTheReadUID(t *testing.T) {
	ctx := t.Context()
	ours := ControllerRef(testCanary())
	recreated := configMap(&ours, nil, "a")
	recreated.UID = "new-uid"
	var req requests
	c := req.client(t, recreated)
	read := configMap(&ours, nil, "a")
	read.UID = "old-uid"
	a := &Applier{Reader: c, Client: c}
	if err := a.DeleteRead(ctx, testCanary(), read, "ConfigMap apps/web"); err != nil {
		t.Fatal(err)
	}
	if req.deletes != 1 || req.deleteUID == nil || *req.deleteUID != "old-uid" {
		t.Errorf("%d deletes with UID precondition %v, want one with old-uid", req.deletes, req.deleteUID)
	}
	if err := a.DeleteRead(ctx, testCanary(), configMap(nil, nil, "a"), ""); err != nil || req.deletes != 1 {
		t.Errorf("DeleteRead of an object the Canary does not control = %v after %d deletes, want nothing done", err, req.deletes)
	}
	if err := a.DeleteRead(ctx, testCanary(), nil, ""); err != nil {
		t.Errorf("DeleteRead(nil) = %v", err)
	}
}
