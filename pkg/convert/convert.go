// Package convert turns Flagger (flagger.app/v1beta1) and Argo Rollouts
// (argoproj.io/v1alpha1) manifests into Serin (serin.dev/v1beta1) ones.
//
// Third-party input is read as unstructured data rather than through copies
// of the Flagger or Argo Go types, so that any field, known or not, is seen:
// every input field is either mapped or reported in a Warning, never dropped
// silently. Output is built from Serin's typed API, so it always has Serin's
// shape.
package convert

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Warning reports an input field that was changed, approximated or dropped.
type Warning struct {
	// Doc names the input document, as Kind/name (or "document N", counting
	// from 1, when it has no kind or name).
	Doc string
	// Path is the field's path in the input document, such as
	// spec.strategy.canary.steps[2].experiment.
	Path string
	// Message says what happened to the field.
	Message string
}

func (w Warning) String() string {
	return w.Doc + " " + w.Path + ": " + w.Message
}

// The API groups whose kinds this package converts.
const (
	flaggerGroup = "flagger.app"
	argoGroup    = "argoproj.io"
)

// Convert converts every document of a multi-document YAML stream. Flagger
// and Argo Rollouts kinds are converted; Serin objects and every other kind
// are copied unchanged, so converting the output again yields the same
// bytes. A Rollout's AnalysisTemplates and Services are looked up among the
// input's objects. The error is set only when a document cannot be parsed.
func Convert(in []byte) ([]byte, []Warning, error) {
	type document struct {
		n   int // counting from 1, as in warnings and errors
		raw string
		obj map[string]any
	}
	var docs []document
	var objs []map[string]any
	for i, raw := range splitDocuments(string(in)) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(raw), &obj); err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue // only comments
		}
		objs = append(objs, obj)
		docs = append(docs, document{n: i + 1, raw: raw, obj: obj})
	}

	var out []string
	var warnings []Warning
	for _, d := range docs {
		t := newTracker(d.obj)
		converted, err := convertObject(t, objs)
		if converted == nil && err == nil {
			t.used[""] = true // copied whole
		}
		ws := t.finish()
		for j := range ws {
			if ws[j].Doc == "" {
				ws[j].Doc = fmt.Sprintf("document %d", d.n)
			}
		}
		warnings = append(warnings, ws...)
		if err != nil {
			return nil, warnings, fmt.Errorf("%s: %w", docName(d.obj, d.n), err)
		}
		if converted == nil {
			out = append(out, d.raw)
			continue
		}
		for _, o := range converted {
			y, err := marshal(o)
			if err != nil {
				return nil, warnings, fmt.Errorf("%s: %w", docName(d.obj, d.n), err)
			}
			out = append(out, y)
		}
	}
	return []byte(strings.Join(out, "---\n")), warnings, nil
}

// convertObject returns the Serin objects for t's document, or nil objects
// when the document is copied unchanged. related are all the input's
// objects.
func convertObject(t *tracker, related []map[string]any) ([]any, error) {
	obj := t.obj
	kind, _ := obj["kind"].(string)
	switch group(obj) {
	case flaggerGroup:
		if obj["apiVersion"] != flaggerGroup+"/v1beta1" {
			break
		}
		switch kind {
		case "Canary":
			c, err := flaggerCanary(t)
			return []any{c}, err
		case "MetricTemplate":
			m, err := flaggerMetricTemplate(t)
			return []any{m}, err
		case "AlertProvider":
			p, err := flaggerAlertProvider(t)
			return []any{p}, err
		}
	case argoGroup:
		if obj["apiVersion"] != argoGroup+"/v1alpha1" {
			break
		}
		switch kind {
		case "Rollout":
			d, c, err := convertRollout(t, related)
			if d == nil {
				return []any{c}, err
			}
			return []any{d, c}, err
		case "AnalysisTemplate", "ClusterAnalysisTemplate":
			tmpl, err := readAnalysisTemplate(t)
			objs := []any{}
			for _, m := range tmpl.templates {
				objs = append(objs, m)
			}
			return objs, err
		}
	default:
		return nil, nil
	}
	t.warn("apiVersion", "%s %s has no Serin equivalent; copied unchanged", obj["apiVersion"], kind)
	return nil, nil
}

func group(obj map[string]any) string {
	av, _ := obj["apiVersion"].(string)
	g, _, _ := strings.Cut(av, "/")
	return g
}

// docID is the Warning.Doc of obj, empty when obj has no kind or name.
func docID(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if kind == "" || name == "" {
		return ""
	}
	return kind + "/" + name
}

func docName(obj map[string]any, n int) string {
	if id := docID(obj); id != "" {
		return id
	}
	return fmt.Sprintf("document %d", n)
}

// splitDocuments splits a YAML stream at its "---" lines. Each document
// keeps its text as written, without leading blank lines and with a single
// final newline, so that documents copied unchanged are stable.
func splitDocuments(s string) []string {
	var docs []string
	var cur []string
	flush := func() {
		text := strings.TrimRight(strings.Join(cur, "\n"), " \t\r\n")
		text = strings.TrimLeft(text, "\r\n")
		if strings.TrimSpace(text) != "" {
			docs = append(docs, text+"\n")
		}
		cur = nil
	}
	for _, line := range strings.Split(s, "\n") {
		if l := strings.TrimRight(line, " \t\r"); l == "---" || strings.HasPrefix(l, "--- #") {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

// marshal writes a typed object as YAML without the fields an API server
// fills in: status, and the null creationTimestamp of every metadata.
func marshal(obj any) (string, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return "", err
	}
	delete(m, "status")
	dropNulls(m)
	// IntOrString and DeploymentStrategy are structs tagged omitempty,
	// which encoding/json never omits; their zero values mean unset.
	if spec, ok := m["spec"].(map[string]any); ok {
		if svc, ok := spec["service"].(map[string]any); ok && svc["targetPort"] == float64(0) {
			delete(svc, "targetPort")
		}
		if s, ok := spec["strategy"].(map[string]any); ok && len(s) == 0 {
			delete(spec, "strategy")
		}
		// Likewise a container's resources.
		tmpl, _ := spec["template"].(map[string]any)
		pod, _ := tmpl["spec"].(map[string]any)
		for _, k := range []string{"containers", "initContainers"} {
			ctrs, _ := pod[k].([]any)
			for _, ctr := range ctrs {
				if ctr, ok := ctr.(map[string]any); ok {
					if r, ok := ctr["resources"].(map[string]any); ok && len(r) == 0 {
						delete(ctr, "resources")
					}
				}
			}
		}
	}
	y, err := yaml.Marshal(m)
	return string(y), err
}

func dropNulls(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range v {
			dropNulls(e)
		}
	}
}

// tracker records, for one input document, which fields a conversion used
// and which it warned about, so that finish can report every other field.
type tracker struct {
	doc      string
	obj      map[string]any
	used     map[string]bool
	warnings []Warning
}

func newTracker(obj map[string]any) *tracker {
	return &tracker{doc: docID(obj), obj: obj, used: map[string]bool{}}
}

func (t *tracker) root() node { return node{t: t, v: t.obj} }

// warn reports a field that is not mapped, or not as written, and marks it
// and everything below it as handled.
func (t *tracker) warn(path, format string, args ...any) {
	t.used[path] = true
	t.note(path, format, args...)
}

// note reports something about a field without marking it handled, so its
// unmapped subfields are still reported.
func (t *tracker) note(path, format string, args ...any) {
	t.warnings = append(t.warnings, Warning{Doc: t.doc, Path: path, Message: fmt.Sprintf(format, args...)})
}

// finish warns about every field that was neither used nor warned about,
// once per unhandled subtree, and returns the warnings sorted by path.
func (t *tracker) finish() []Warning {
	t.sweep(t.root())
	sort.SliceStable(t.warnings, func(i, j int) bool { return t.warnings[i].Path < t.warnings[j].Path })
	return t.warnings
}

func (t *tracker) sweep(n node) {
	if t.covered(n.path) {
		return
	}
	if n.path != "" && !t.touchesBelow(n.path) {
		t.warn(n.path, "not supported")
		return
	}
	switch v := n.v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.sweep(n.get(k))
		}
	case []any:
		for i := range v {
			t.sweep(n.at(i))
		}
	}
}

// covered reports whether path or one of its ancestors was used or warned
// about.
func (t *tracker) covered(path string) bool {
	for p := path; ; p = parentPath(p) {
		if t.used[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func (t *tracker) touchesBelow(path string) bool {
	for p := range t.used {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// node is a value of the input document and its path.
type node struct {
	t    *tracker
	path string
	v    any
}

func (n node) get(key string) node {
	m, _ := n.v.(map[string]any)
	p := key
	if n.path != "" {
		p = n.path + "." + key
	}
	return node{t: n.t, path: p, v: m[key]}
}

func (n node) at(i int) node {
	l, _ := n.v.([]any)
	var v any
	if i < len(l) {
		v = l[i]
	}
	return node{t: n.t, path: fmt.Sprintf("%s[%d]", n.path, i), v: v}
}

func (n node) exists() bool { return n.v != nil }

// use marks the node and everything below it as mapped.
func (n node) use() { n.t.used[n.path] = true }

func (n node) warn(format string, args ...any) { n.t.warn(n.path, format, args...) }

func (n node) note(format string, args ...any) { n.t.note(n.path, format, args...) }

// list returns the items of a list node, which the caller handles; any
// other value is warned about.
func (n node) list() []node {
	l, ok := n.v.([]any)
	if !ok {
		if n.exists() {
			n.warn("expected a list; ignored")
		}
		return nil
	}
	if len(l) == 0 {
		n.use()
	}
	items := make([]node, len(l))
	for i := range l {
		items[i] = n.at(i)
	}
	return items
}

// keys returns the keys of a map node in order.
func (n node) keys() []string {
	m, _ := n.v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// str returns a string node's value and marks it used; any other value is
// warned about.
func (n node) str() (string, bool) {
	s, ok := n.v.(string)
	if !ok {
		if n.exists() {
			n.warn("expected a string; ignored")
		}
		return "", false
	}
	n.use()
	return s, true
}

// integer returns an integer node's value and marks it used; any other
// value is warned about.
func (n node) integer() (int64, bool) {
	f, ok := n.v.(float64)
	if !ok || f != float64(int64(f)) {
		if n.exists() {
			n.warn("expected an integer; ignored")
		}
		return 0, false
	}
	n.use()
	return int64(f), true
}

// boolean returns a boolean node's value and marks it used; any other value
// is warned about.
func (n node) boolean() (bool, bool) {
	b, ok := n.v.(bool)
	if !ok {
		if n.exists() {
			n.warn("expected a boolean; ignored")
		}
		return false, false
	}
	n.use()
	return b, true
}

// stripServerFields warns about and removes from meta the fields an API
// server sets, which must not be applied to a new object, and warns about
// status.
func stripServerFields(t *tracker, meta map[string]any) {
	for _, k := range []string{"creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp", "generation", "managedFields", "ownerReferences", "resourceVersion", "selfLink", "uid"} {
		if _, ok := meta[k]; ok {
			t.warn("metadata."+k, "set by the API server; dropped")
			delete(meta, k)
		}
	}
	if _, ok := t.obj["status"]; ok {
		t.warn("status", "runtime state; dropped")
	}
}

// copyMeta returns a copy of the input's metadata without server fields.
func copyMeta(t *tracker) map[string]any {
	src, _ := t.obj["metadata"].(map[string]any)
	meta := make(map[string]any, len(src))
	for k, v := range src {
		meta[k] = v
	}
	stripServerFields(t, meta)
	return meta
}

// fromMap decodes an unstructured value into a typed one through JSON.
func fromMap(v any, out any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(j, out)
}
