// Package apply writes the objects Serin owns (primaries, config copies,
// Services, routing objects), the one way they are written: server-side
// apply with Serin's field manager, forcing ownership of the fields Serin
// sets, and only when something changed. It holds the ownership rule too:
// an object of a generated name that the Canary did not create is never
// written or deleted, unless its maker hands it over with AdoptAnnotation
// (for the kinds where a hand-over is allowed).
//
// What "changed" means is each writer's: a hash of what it applied last
// (HashAnnotation), the fields its field manager still owns, or a typed
// comparison of the fields it manages (Write.UpToDate). The applier runs
// the steps in one order for all of them.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/serin-dev/serin/pkg/versions"
)

// FieldManager names Serin in server-side apply and in managed fields.
const FieldManager = "serin"

// HashAnnotation holds the hash of what Serin last applied to an object it
// owns: an object that carries the hash of what would be applied (and
// whatever else its writer checks) is not written again, and a field Serin
// stopped setting changes the hash, so the next apply removes that field.
const HashAnnotation = "serin.dev/applied-hash"

// Applier reads and writes the objects a Canary owns.
type Applier struct {
	// Reader reads the live objects; it may be the informer cache.
	Reader client.Reader
	// Client writes.
	Client client.Client
	// FieldManager names Serin in server-side apply; empty means
	// FieldManager.
	FieldManager string
	// Versions, if set, holds per object the resourceVersion this process
	// last wrote or read around the cache (see ReadVerified): every write
	// records the version the server answered with, and a failed write
	// forgets it, since what the server holds is unknown then. The
	// controller shares it with the predicate that skips the watch events
	// of its own writes.
	Versions *versions.Tracker
}

func (a *Applier) fieldManager() string {
	if a.FieldManager == "" {
		return FieldManager
	}
	return a.FieldManager
}

// Ref names an object that Serin writes, and the Canary that owns it.
type Ref struct {
	// Kind names the object's kind in messages ("HTTPRoute").
	Kind            string
	Namespace, Name string
	// Owner is the Canary that controls the object; only its name and UID
	// are read.
	Owner metav1.Object
	// What names the object in messages; empty means "Kind name".
	What string
}

func (r Ref) String() string {
	if r.What != "" {
		return r.What
	}
	return r.Kind + " " + r.Name
}

func (r Ref) key() client.ObjectKey { return client.ObjectKey{Namespace: r.Namespace, Name: r.Name} }

// MayWrite refuses, unless the owner may write live (an existing object of
// r's name): MayWrite's rule.
func (r Ref) MayWrite(live client.Object) error {
	return MayWrite(live, r.Owner.GetUID(), r.Kind)
}

// Read reads the live object r names into live and reports whether it
// exists. An existing object the owner may not write is refused
// (Ref.MayWrite), so that a writer can read every object it generates, and
// refuse, before it writes any.
func (a *Applier) Read(ctx context.Context, r Ref, live client.Object) (bool, error) {
	return r.checkRead(live, a.Reader.Get(ctx, r.key(), live))
}

// ReadVerified is Read for an object whose state must be known for sure:
// it trusts Reader (the cache) only when it holds the version last written
// or read around it, recorded in Versions, and otherwise reads with server.
func (a *Applier) ReadVerified(ctx context.Context, r Ref, live client.Object, server client.Reader) (bool, error) {
	err := a.Reader.Get(ctx, r.key(), live)
	if err == nil && !a.current(live) || apierrors.IsNotFound(err) {
		// The cache has not caught up with the last write, someone else
		// wrote since, or this process has not seen the object yet.
		err = server.Get(ctx, r.key(), live)
		if err == nil {
			a.record(live)
		}
	}
	return r.checkRead(live, err)
}

func (r Ref) checkRead(live client.Object, err error) (bool, error) {
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", r, err)
	}
	return true, r.MayWrite(live)
}

// Write is one object to apply, of type T when it exists.
type Write[T client.Object] struct {
	Ref
	// Desired builds the body of the apply request: apiVersion, kind,
	// metadata and the fields Serin sets (see Body and JSONBody). It is
	// only called when there is something to write. The applier adds
	// HashAnnotation and, for an object taken over, resourceVersion.
	Desired func() (*unstructured.Unstructured, error)
	// Hash, if set, is the hash of what is applied: the write is skipped
	// only if the live object carries it in HashAnnotation, and the
	// write records it there.
	Hash string
	// ManagedPath, if set, is a field (as in managed fields: "f:spec",
	// "f:rules") that the field manager must still own for the write to
	// be skipped: someone who wrote it since has taken it over.
	ManagedPath []string
	// UpToDate, if set, compares the fields Serin manages on the live
	// object with what would be applied: the write is skipped only if it
	// reports true. An error is returned as it is.
	UpToDate func(live T) (bool, error)
	// CreateOnly writes a missing object, and leaves an existing one as
	// it is (once the owner may write it).
	CreateOnly bool
	// Decode sets live, after a write, to the object as the server stored
	// it, for writers that read the result.
	Decode bool
}

// Apply applies w unless live, the object as read (exists says whether
// there is one), already carries it: the owner must control it (a handed
// over object is written to be taken), with w.Hash, w.ManagedPath and
// w.UpToDate all agreeing. An existing object the owner may not write is
// refused. After a write with w.Decode, live holds the object as the
// server stored it. Apply reports whether it wrote.
func Apply[T client.Object](ctx context.Context, a *Applier, w Write[T], live T, exists bool) (bool, error) {
	if exists {
		if err := w.MayWrite(live); err != nil {
			return false, err
		}
		if w.CreateOnly {
			return false, nil
		}
		current, err := w.current(a, live)
		if err != nil || current {
			return false, err
		}
	}
	u, err := w.Desired()
	if err != nil {
		return false, fmt.Errorf("encoding %s: %w", w.Ref, err)
	}
	if w.Hash != "" {
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[HashAnnotation] = w.Hash
		u.SetAnnotations(annotations)
	}
	if exists && HandedOver(live, w.Owner.GetUID()) {
		// Taken only as it was read: a hand-over withdrawn since makes
		// the apply fail with a conflict.
		u.SetResourceVersion(live.GetResourceVersion())
	}
	if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(a.fieldManager()), client.ForceOwnership); err != nil {
		a.forget(u)
		return false, fmt.Errorf("applying %s: %w", w.Ref, err)
	}
	// u holds the response now.
	a.record(u)
	if w.Decode {
		if err := decode(u, live); err != nil {
			return true, fmt.Errorf("reading the applied %s: %w", w.Ref, err)
		}
	}
	return true, nil
}

// current reports whether live already carries what w would apply.
func (w Write[T]) current(a *Applier, live T) (bool, error) {
	if w.UpToDate != nil {
		if ok, err := w.UpToDate(live); err != nil || !ok {
			return false, err
		}
	}
	if w.Hash != "" && live.GetAnnotations()[HashAnnotation] != w.Hash {
		return false, nil
	}
	if len(w.ManagedPath) > 0 && !ManagerOwns(live.GetManagedFields(), a.fieldManager(), w.ManagedPath...) {
		return false, nil
	}
	return Controlled(live, w.Owner.GetUID()), nil
}

// Delete reads obj (its namespace and name set) and deletes it if owner
// controls it. A missing object, or a missing CRD (nothing of the kind can
// exist), is nothing to do.
func (a *Applier) Delete(ctx context.Context, owner metav1.Object, obj client.Object) error {
	err := a.Reader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", a.kindOf(obj), obj.GetName(), err)
	}
	return a.DeleteRead(ctx, owner, obj, "")
}

// DeleteRead deletes obj, as read, if owner controls it; nil is nothing to
// do. The UID precondition keeps the delete from hitting an object
// recreated meanwhile under the same name. what names obj in messages;
// empty means "Kind name".
func (a *Applier) DeleteRead(ctx context.Context, owner metav1.Object, obj client.Object, what string) error {
	if isNil(obj) || !Controlled(obj, owner.GetUID()) {
		return nil
	}
	uid := obj.GetUID()
	if err := a.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		if what == "" {
			what = a.kindOf(obj) + " " + obj.GetName()
		}
		return fmt.Errorf("deleting %s: %w", what, err)
	}
	return nil
}

// kindOf names obj's kind for messages.
func (a *Applier) kindOf(obj runtime.Object) string { return KindOf(obj, a.Client.Scheme()) }

// KindOf names obj's kind for messages, as scheme knows it, or its Go type.
func KindOf(obj runtime.Object, scheme *runtime.Scheme) string {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}

func (a *Applier) current(obj client.Object) bool {
	return a.Versions != nil && a.Versions.Current(obj)
}

func (a *Applier) record(obj client.Object) {
	if a.Versions != nil {
		a.Versions.Record(obj)
	}
}

func (a *Applier) forget(obj client.Object) {
	if a.Versions != nil {
		a.Versions.Forget(obj)
	}
}

// ManagerOwns reports whether manager still owns the field at path in its
// apply entry; a field written by someone else since has moved to them.
func ManagerOwns(entries []metav1.ManagedFieldsEntry, manager string, path ...string) bool {
	for _, e := range entries {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil {
			return false
		}
		for _, p := range path {
			next, ok := fields[p].(map[string]any)
			if !ok {
				return false
			}
			fields = next
		}
		return true
	}
	return false
}

// FieldManagers returns the managers whose managedFields entries own the
// field at path (for example "f:spec", "f:replicas"), sorted.
func FieldManagers(entries []metav1.ManagedFieldsEntry, path ...string) []string {
	var out []string
	for _, e := range entries {
		if e.FieldsV1 == nil || slices.Contains(out, e.Manager) {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil {
			continue
		}
		owns := true
		for _, p := range path {
			next, ok := fields[p].(map[string]any)
			if !ok {
				owns = false
				break
			}
			fields = next
		}
		if owns {
			out = append(out, e.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// MapPatch is the JSON merge patch of a map field (a ConfigMap's or
// Secret's data) that turns live into want: keys only live has are removed.
func MapPatch[V any](want, live map[string]V) map[string]any {
	out := make(map[string]any, len(want)+len(live))
	for k := range live {
		out[k] = nil
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// Hash returns a short hex SHA-256 of v's JSON encoding, for Write.Hash.
func Hash(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), nil
}

// Body turns a typed object into the body of an apply request, without the
// fields the server sets. gvk, unless empty, replaces obj's type.
func Body(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := withoutServerFields(m)
	if !gvk.Empty() {
		u.SetGroupVersionKind(gvk)
	}
	return u, nil
}

// JSONBody is Body through v's JSON form: for objects whose fields only
// their own MarshalJSON encodes correctly (Istio's protobuf specs), and for
// apply configurations.
func JSONBody(v any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return withoutServerFields(m), nil
}

// withoutServerFields drops the status and the empty creationTimestamp:
// Serin owns neither.
func withoutServerFields(m map[string]any) *unstructured.Unstructured {
	delete(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}
}

// decode sets obj to u, through their JSON form.
func decode(u *unstructured.Unstructured, obj client.Object) error {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	reflect.ValueOf(obj).Elem().SetZero()
	return json.Unmarshal(b, obj)
}

// isNil reports whether obj is nil, or a nil pointer.
func isNil(obj client.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
