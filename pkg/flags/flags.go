package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Flag states flagd accepts.
const (
	StateEnabled  = "ENABLED"
	StateDisabled = "DISABLED"
)

// Document is a parsed flags.json. Every field is kept as it was read
// (numbers keep their text), so that writing it back changes nothing but
// the order of object keys and the white space.
type Document struct {
	// top holds the top-level fields other than "flags" ($schema,
	// $evaluators, metadata, ...).
	top map[string]any
	// flags holds each flag's object, all its fields.
	flags map[string]map[string]any
	// evaluators is top["$evaluators"], the shared rules {"$ref": name}
	// stands for.
	evaluators map[string]any
	// targeting holds each flag's targeting with $ref resolved, as Parse
	// resolved it (flags without targeting, or with {}, have none).
	targeting map[string]any
	// budget is what is left of maxResolvedValues while Parse resolves.
	budget int
	// ruleErrs holds, for each flag whose targeting flagd-core refuses to
	// compile (a part that does not depend on the context fails), why.
	// flagd loads the document; the flag evaluates to PARSE_ERROR.
	ruleErrs map[string]error
}

// maxResolvedValues bounds the JSON values that the targeting of all a
// document's flags may add up to with each $ref resolved, so that a small
// document whose evaluators refer to each other many times over (each
// level doubling the size) is refused instead of hanging Parse. A
// document without $ref is far below it (a ConfigMap holds at most 1 MiB).
const maxResolvedValues = 1_000_000

// Parse reads a flags.json document and validates it. The error names
// each flag that flagd would refuse, and why.
func Parse(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("flags document is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("flags document has data after its JSON value")
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("flags document must be a JSON object, not %s", kind(v))
	}
	raw, ok := top["flags"]
	if !ok {
		return nil, errors.New(`flags document has no "flags" object`)
	}
	flagsObj, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`"flags" must be an object, not %s`, kind(raw))
	}
	d := &Document{top: map[string]any{}, flags: map[string]map[string]any{}, targeting: map[string]any{}, budget: maxResolvedValues, ruleErrs: map[string]error{}}
	for k, v := range top {
		if k != "flags" {
			d.top[k] = v
		}
	}
	if ev, ok := top["$evaluators"]; ok {
		m, ok := ev.(map[string]any)
		if !ok {
			return nil, fmt.Errorf(`"$evaluators" must be an object, not %s`, kind(ev))
		}
		d.evaluators = m
	}
	var errs []error
	for _, key := range sortedKeys(flagsObj) {
		f, ok := flagsObj[key].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("flag %q: must be an object, not %s", key, kind(flagsObj[key])))
			continue
		}
		d.flags[key] = f
		if err := d.validateFlag(key, f); err != nil {
			errs = append(errs, fmt.Errorf("flag %q: %w", key, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Flags returns the flag keys of the document, sorted.
func (d *Document) Flags() []string { return sortedKeys(d.flags) }

// Marshal writes the document as JSON.
func (d *Document) Marshal() ([]byte, error) {
	out := make(map[string]any, len(d.top)+1)
	for k, v := range d.top {
		out[k] = v
	}
	flags := make(map[string]any, len(d.flags))
	for k, f := range d.flags {
		flags[k] = f
	}
	out["flags"] = flags
	return encode(out)
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (d *Document) validateFlag(key string, f map[string]any) error {
	var errs []error
	switch s := f["state"]; s {
	case StateEnabled, StateDisabled:
	case nil:
		errs = append(errs, errors.New(`has no state (want "ENABLED" or "DISABLED")`))
	default:
		errs = append(errs, fmt.Errorf(`state must be "ENABLED" or "DISABLED", not %s`, show(s)))
	}
	variants, err := variantsOf(f)
	if err != nil {
		errs = append(errs, err)
	}
	if dv, ok := f["defaultVariant"]; ok && dv != nil {
		name, isString := dv.(string)
		switch {
		case !isString:
			errs = append(errs, fmt.Errorf("defaultVariant must be a variant name or null, not %s", kind(dv)))
		case variants != nil:
			if _, ok := variants[name]; !ok {
				errs = append(errs, fmt.Errorf("defaultVariant %q is not one of the variants %v", name, sortedKeys(variants)))
			}
		}
	}
	if t, ok := f["targeting"]; ok && t != nil {
		if _, ok := t.(map[string]any); !ok {
			errs = append(errs, fmt.Errorf("targeting must be a JSON object (a JSONLogic rule), not %s", kind(t)))
		} else if resolved, err := d.resolveBounded(t, nil, &d.budget); err != nil {
			errs = append(errs, fmt.Errorf("targeting: %w", err))
		} else if err := checkRule(resolved, "targeting", true); err != nil {
			errs = append(errs, err)
		} else if len(resolved.(map[string]any)) > 0 {
			d.targeting[key] = resolved
			if err := checkConstants(resolved); err != nil {
				d.ruleErrs[key] = err
			}
		}
	}
	return errors.Join(errs...)
}

// variantsOf returns the flag's variants, checking that they are a
// non-empty object of one JSON type (flagd's schema allows boolean,
// number, string or object variants, not a mix).
func variantsOf(f map[string]any) (map[string]any, error) {
	raw, ok := f["variants"]
	if !ok {
		return nil, errors.New("has no variants")
	}
	variants, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("variants must be an object, not %s", kind(raw))
	}
	if len(variants) == 0 {
		return nil, errors.New("variants is empty")
	}
	var first, firstName string
	for _, name := range sortedKeys(variants) {
		if name == "" {
			return nil, errors.New("a variant has an empty name")
		}
		k := kind(variants[name])
		switch k {
		case "boolean", "number", "string", "object":
		default:
			return nil, fmt.Errorf("variant %q is %s; variants are booleans, numbers, strings or objects", name, k)
		}
		if first == "" {
			first, firstName = k, name
		} else if k != first {
			return nil, fmt.Errorf("variants mix types: %q is %s, %q is %s", firstName, first, name, k)
		}
	}
	return variants, nil
}

// resolve returns v with each {"$ref": name} replaced by the shared
// evaluator of that name (resolved in turn), as flagd substitutes them
// before it parses the targeting.
func (d *Document) resolve(v any, seen []string) (any, error) {
	budget := maxResolvedValues
	return d.resolveBounded(v, seen, &budget)
}

func (d *Document) resolveBounded(v any, seen []string, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("with $ref resolved, the targeting of the document's flags is over %d JSON values", maxResolvedValues)
	}
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"]; ok && len(x) == 1 {
			name, ok := ref.(string)
			if !ok {
				return nil, fmt.Errorf("$ref must name an evaluator, not %s", kind(ref))
			}
			ev, ok := d.evaluators[name]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no such entry in $evaluators", name)
			}
			if slices.Contains(seen, name) {
				return nil, fmt.Errorf("$ref %q refers to itself (%s)", name, strings.Join(append(seen, name), " -> "))
			}
			return d.resolveBounded(ev, append(seen, name), budget)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := d.resolveBounded(e, seen, budget)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := d.resolveBounded(e, seen, budget)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// operators are the JSONLogic operations flagd evaluates: the standard
// ones and flagd's own (fractional, sem_ver, starts_with, ends_with).
var operators = map[string]bool{
	"var": true, "missing": true, "missing_some": true,
	"if": true, "?:": true, "==": true, "===": true, "!=": true, "!==": true,
	"!": true, "!!": true, "or": true, "and": true,
	">": true, ">=": true, "<": true, "<=": true, "max": true, "min": true,
	"+": true, "-": true, "*": true, "/": true, "%": true,
	"map": true, "reduce": true, "filter": true, "all": true, "none": true, "some": true,
	"merge": true, "in": true, "cat": true, "substr": true,
	"fractional": true, "sem_ver": true, "starts_with": true, "ends_with": true,
}

// checkRule checks that every object in v is a JSONLogic operation flagd
// knows (one key, a known operator); the top-level targeting may be {}.
func checkRule(v any, path string, top bool) error {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && top {
			return nil
		}
		if len(x) != 1 {
			return fmt.Errorf("%s: an object with keys %v is not a JSONLogic operation (one operator key)", path, sortedKeys(x))
		}
		for op, args := range x {
			if !operators[op] {
				return fmt.Errorf("%s: unknown operator %q", path, op)
			}
			return checkRule(args, path+"."+op, false)
		}
	case []any:
		for i, e := range x {
			if err := checkRule(e, fmt.Sprintf("%s[%d]", path, i), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// definition is what decides how a flag evaluates: its state, variants,
// default variant and targeting (with $ref resolved). Metadata and other
// fields are not part of it.
type definition struct {
	State          string         `json:"state"`
	Variants       map[string]any `json:"variants"`
	DefaultVariant any            `json:"defaultVariant"`
	Targeting      any            `json:"targeting"`
}

// definition returns the flag's definition, or nil when the document has
// no such flag. The document was validated, so $ref resolves.
func (d *Document) definition(key string) *definition {
	f, ok := d.flags[key]
	if !ok {
		return nil
	}
	def := &definition{State: f["state"].(string), Variants: f["variants"].(map[string]any), DefaultVariant: f["defaultVariant"]}
	if t, ok := d.targeting[key]; ok {
		def.Targeting = t
	} else if t, ok := f["targeting"].(map[string]any); ok && len(t) > 0 {
		def.Targeting, _ = d.resolve(t, nil)
	}
	return def
}

// canonical is v as JSON in one form: keys sorted, numbers as float64 (as
// flagd's evaluators read them), so equal definitions compare equal.
func canonical(v any) string {
	b, err := json.Marshal(canonicalValue(v))
	if err != nil {
		// Values come from a parsed document: they always marshal.
		panic(err)
	}
	return string(b)
}

func canonicalValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonicalValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonicalValue(e)
		}
		return out
	case *definition:
		if x == nil {
			return nil
		}
		return map[string]any{
			"state": x.State, "variants": canonicalValue(x.Variants),
			"defaultVariant": x.DefaultVariant, "targeting": canonicalValue(x.Targeting),
		}
	}
	return v
}

// kind names the JSON type of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64, int:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
