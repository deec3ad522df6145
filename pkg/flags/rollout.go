package flags

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
)

// Changed returns the keys of the flags whose definition (state, variants,
// defaultVariant, targeting with $ref resolved) differs between old and
// new, sorted. A flag only one of them has is changed too. Metadata and
// other fields do not count: they do not change how a flag evaluates.
func Changed(old, new *Document) []string {
	keys := map[string]bool{}
	for k := range old.flags {
		keys[k] = true
	}
	for k := range new.flags {
		keys[k] = true
	}
	var changed []string
	for k := range keys {
		if canonical(old.definition(k)) != canonical(new.definition(k)) {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed
}

// Revision is a stable hash of the definitions of all the document's flags
// (the same ones Changed compares), so two documents have the same
// revision exactly when Changed finds no flag between them; several
// changed flags make one revision. Formatting, key order, metadata and
// unused evaluators do not change it.
func Revision(doc *Document) string {
	defs := make(map[string]any, len(doc.flags))
	for k := range doc.flags {
		defs[k] = doc.definition(k)
	}
	sum := sha256.Sum256([]byte(canonical(defs)))
	return hex.EncodeToString(sum[:8])
}

// Rollout returns the document flagd should serve while new replaces old at
// weight (0..100): the top-level fields and the unchanged flags of new, and
// for each changed flag one definition that gives weight% of the
// evaluation contexts (by targeting key) the new definition and the rest
// the old one. At 0 the changed flags are old's, at 100 they are new's.
// See the package documentation for the encoding.
func Rollout(old, new *Document, weight int) ([]byte, error) {
	if weight < 0 || weight > 100 {
		return nil, fmt.Errorf("weight %d is not in 0..100", weight)
	}
	out := &Document{top: new.top, flags: map[string]map[string]any{}, evaluators: new.evaluators}
	for k, f := range new.flags {
		out.flags[k] = f
	}
	for _, key := range Changed(old, new) {
		var f map[string]any
		switch {
		case weight == 100:
			f = new.flags[key]
		case weight == 0:
			f = old.resolvedFlag(key)
		default:
			var err error
			if f, err = split(key, old, new, weight); err != nil {
				return nil, fmt.Errorf("flag %q: %w", key, err)
			}
		}
		if f == nil {
			delete(out.flags, key)
		} else {
			out.flags[key] = f
		}
	}
	return out.Marshal()
}

// resolvedFlag is the document's flag with its targeting's $ref resolved,
// so that it evaluates the same in a document with other $evaluators; nil
// when there is no such flag.
func (d *Document) resolvedFlag(key string) map[string]any {
	f, ok := d.flags[key]
	if !ok {
		return nil
	}
	out := make(map[string]any, len(f))
	for k, v := range f {
		out[k] = v
	}
	if def := d.definition(key); def.Targeting != nil {
		out["targeting"] = def.Targeting
	}
	return out
}

// side is one definition of a flag under the split.
type side struct {
	def *definition // nil when the document has no such flag
	// names maps the side's variant names to their names in the merged
	// flag (a name clash renames the new side's variant).
	names map[string]string
}

// served tells whether the side serves a variant at all: an absent or
// DISABLED flag gives the caller its code default.
func (s side) served() bool { return s.def != nil && s.def.State == StateEnabled }

// defaultName is the side's default variant in the merged flag, or nil
// when the side falls back to the caller's code default.
func (s side) defaultName() any {
	if !s.served() {
		return nil
	}
	if dv, ok := s.def.DefaultVariant.(string); ok {
		return s.names[dv]
	}
	return nil
}

// split builds the merged flag for a changed flag at 0 < weight < 100.
func split(key string, old, new *Document, weight int) (map[string]any, error) {
	o := side{def: old.definition(key)}
	n := side{def: new.definition(key)}
	if !o.served() && !n.served() {
		// Both sides give the code default: any of the two is exact.
		if f := new.flags[key]; f != nil {
			return f, nil
		}
		return old.resolvedFlag(key), nil
	}
	if o.served() && n.served() {
		if a, b := variantKind(o.def.Variants), variantKind(n.def.Variants); a != b {
			return nil, fmt.Errorf("variants change type from %s to %s; a flag's type cannot change gradually", a, b)
		}
	}

	variants, taken := merge(&o, &n)
	unknown := freeName("serin-unknown-variant", taken)

	// The merged default variant serves both sides' "targeting returned
	// null": it is null (the caller's code default) if either side needs
	// that, else the old side's default.
	var merged any
	if o.served() && n.served() && o.defaultName() != nil && n.defaultName() != nil {
		merged = o.defaultName()
	}
	oldExpr := o.expr(variants, merged, unknown)
	newExpr := n.expr(variants, merged, unknown)

	f := make(map[string]any, 5)
	src := new.flags[key]
	if src == nil {
		src = old.flags[key]
	}
	for k, v := range src {
		f[k] = v
	}
	f["state"] = StateEnabled
	f["variants"] = variants
	f["defaultVariant"] = merged
	f["targeting"] = map[string]any{"if": []any{
		map[string]any{"and": []any{
			map[string]any{"var": "targetingKey"},
			map[string]any{"===": []any{
				map[string]any{"fractional": []any{
					map[string]any{"cat": []any{bucketPrefix + key + "/", map[string]any{"var": "targetingKey"}}},
					[]any{"new", weight},
					[]any{"old", 100 - weight},
				}},
				"new",
			}},
		}},
		newExpr,
		oldExpr,
	}}
	return f, nil
}

// merge returns the merged flag's variants and the names either side has:
// the old side's variants under their names, the new side's too unless the
// name is taken by another value, then renamed. It records each served
// side's names in the merged flag.
func merge(o, n *side) (variants map[string]any, taken map[string]bool) {
	variants = map[string]any{}
	taken = map[string]bool{}
	for _, s := range []*side{o, n} {
		if s.def != nil {
			for name := range s.def.Variants {
				taken[name] = true
			}
		}
	}
	if o.served() {
		o.names = map[string]string{}
		for name, v := range o.def.Variants {
			variants[name] = v
			o.names[name] = name
		}
	}
	if n.served() {
		n.names = map[string]string{}
		for _, name := range sortedKeys(n.def.Variants) {
			v := n.def.Variants[name]
			if cur, ok := variants[name]; !ok || canonical(cur) == canonical(v) {
				variants[name] = v
				n.names[name] = name
				continue
			}
			renamed := freeName(name+"-new", taken)
			taken[renamed] = true
			variants[renamed] = v
			n.names[name] = renamed
		}
	}
	return variants, taken
}

// Change is a changed flag as the split serves it. OldVariant and
// NewVariant are the variants the old and the new definition resolve by
// default (their defaultVariant), under their names in the split, which is
// what OpenFeature's telemetry labels an evaluation with
// (feature_flag.variant); empty where that side gives the caller's code
// default. A metric can compare the two sides by them when the change is a
// change of default, the common way of turning a feature on.
type Change struct {
	Key        string
	OldVariant string
	NewVariant string
}

// Changes describes each flag Changed finds, in the same order.
func Changes(old, new *Document) []Change {
	keys := Changed(old, new)
	out := make([]Change, 0, len(keys))
	for _, key := range keys {
		o := side{def: old.definition(key)}
		n := side{def: new.definition(key)}
		merge(&o, &n)
		out = append(out, Change{Key: key, OldVariant: nameOf(o.defaultName()), NewVariant: nameOf(n.defaultName())})
	}
	return out
}

func nameOf(v any) string {
	s, _ := v.(string)
	return s
}

// expr is the JSONLogic expression that yields, in the merged flag, the
// variant this side alone would: null for the code default, the side's
// default where its targeting returns null, and its targeting's result
// with the side's variant names mapped to the merged ones. A name the side
// does not have but the merged flag does is mapped to a name neither has,
// so that it stays the error it is for the side alone.
func (s side) expr(variants map[string]any, merged any, unknown string) any {
	if !s.served() {
		return nil
	}
	def := s.defaultName()
	if s.def.Targeting == nil {
		return def
	}
	t := s.def.Targeting
	asString := map[string]any{"cat": []any{t}}
	result, mapped := t, false
	var foreign []any
	for _, name := range sortedKeys(variants) {
		if _, own := s.def.Variants[name]; !own {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 {
		result, mapped = ifThen(map[string]any{"in": []any{asString, foreign}}, unknown, result), true
	}
	for _, name := range sortedKeys(s.names) {
		if to := s.names[name]; to != name {
			result, mapped = ifThen(map[string]any{"===": []any{asString, name}}, to, result), true
		}
	}
	if !mapped && sameName(def, merged) {
		// Null falls through to the merged default, which is the side's.
		return t
	}
	// The null test comes first: cat refuses null in flagd-core.
	return ifThen(map[string]any{"===": []any{t, nil}}, def, result)
}

func ifThen(cond, then, els any) any {
	return map[string]any{"if": []any{cond, then, els}}
}

func sameName(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	return aok == bok && as == bs
}

// freeName returns name, or name with the first of -2, -3, ... that no
// variant of either side has.
func freeName(name string, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	for i := 2; ; i++ {
		if c := name + "-" + strconv.Itoa(i); !taken[c] {
			return c
		}
	}
}

func variantKind(variants map[string]any) string {
	for _, v := range variants {
		return kind(v)
	}
	return "none"
}
