package workload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// revision identifies what the target runs: its pod template as the user
// wrote it (without the scale-to-zero nodeSelector Serin adds; the replica
// count is not part of the template) and the content hashes of its tracked
// configs. A change to either is a new release.
func revision(tmpl *corev1.PodTemplateSpec, configs map[string]string) string {
	return hashOf(struct {
		Template *corev1.PodTemplateSpec `json:"template"`
		Configs  map[string]string       `json:"configs,omitempty"`
	}{withoutScaleToZero(tmpl), configs})
}

// configHash identifies the content of a ConfigMap or Secret: what its
// consumers see, not its metadata. A Secret's hash lands in the Canary's
// status, which readers without Secret access can see, so it is an HMAC
// keyed by the Secret's UID rather than a plain hash that would let them
// check guesses of a weak value offline. Recreating the Secret changes its
// hash, which starts an analysis of the same content: it is a new object.
// Two objects' content is compared with sameConfigContent, not by hash.
func configHash(obj client.Object) string {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return hashOf(configContent(obj))
	}
	b, err := json.Marshal(configContent(s))
	if err != nil {
		panic(fmt.Sprintf("workload: hashing Secret %s: %v", s.Name, err)) // strings and bytes always encode
	}
	mac := hmac.New(sha256.New, []byte(s.UID))
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// configContent is what a ConfigMap's or Secret's consumers see.
func configContent(obj client.Object) []any {
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		return []any{cm.Data, cm.BinaryData}
	}
	s := obj.(*corev1.Secret)
	return []any{s.Type, s.Data}
}

// sameConfigContent reports whether two configs of one kind hold the same
// content.
func sameConfigContent(a, b client.Object) bool {
	return equality.Semantic.DeepEqual(configContent(a), configContent(b))
}

// appliedHash identifies what applyOwned applies of obj, leaving out the
// unhashed field paths, which belong to other controllers once the object
// exists. Without paths to leave out it hashes the typed encoding: the
// unstructured form that an apply request needs is built only when there
// is something to write, as its conversions were a large share of the
// controller's allocations (figures: e2e/bench/results.md).
func appliedHash(obj client.Object, unhashed ...[]string) string {
	if len(unhashed) == 0 {
		return hashOf(obj)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(fmt.Sprintf("workload: converting %T: %v", obj, err)) // API types always convert
	}
	for _, path := range unhashed {
		unstructured.RemoveNestedField(m, path...)
	}
	return hashOf(m)
}

// hashOf returns a short hex SHA-256 of v's JSON encoding, which is stable:
// encoding/json sorts map keys. v is made of API types and JSON maps, which
// always encode.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("workload: hashing %T: %v", v, err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
