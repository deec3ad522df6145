// Package flags is the pure core of rolling out a change to flagd flag
// definitions (a ConfigMap's flags.json, schema
// https://flagd.dev/schema/v0/flags.json) with stepped analysis: it parses
// and validates a document, finds the flags whose definition changed, names
// a document's revision, and writes the document flagd serves at a weight.
//
// # Definitions
//
// A flag's definition is its state, variants, defaultVariant and targeting,
// with each {"$ref": name} replaced by the shared rule of that name in the
// document's "$evaluators" (as flagd does before it parses targeting). So a
// flag whose targeting text is unchanged but whose evaluator changed is a
// changed flag, and an edit of metadata alone is not. A flag that only one
// document has is changed: the side without it gives the caller's code
// default, as a DISABLED flag does.
//
// # The split
//
// Rollout(old, new, w) writes new's top-level fields ($schema, $evaluators,
// metadata, ...) and its unchanged flags as they are. At 0 a changed flag
// is old's, at 100 new's; in between it is one flag that evaluates like the
// new definition for w% of the evaluation contexts and like the old one for
// the rest:
//
//	"targeting": {"if": [
//	  {"and": [
//	    {"var": "targetingKey"},
//	    {"===": [{"fractional": [
//	      {"cat": ["serin/<flag key>/", {"var": "targetingKey"}]},
//	      ["new", w], ["old", 100-w]]}, "new"]}]},
//	  NEW, OLD]}
//
// flagd's fractional hashes the bucketing string with MurmurHash3 (x86, 32
// bit, seed 0) and maps the hash h to bucket h*100>>32 (h*totalWeight>>32 in
// flagd and flagd-core 4; older flagd releases used |int32(h)|/MaxInt32*100,
// also a fixed number per context); a bucket below w is the "new" entry. So
// the new side at w is exactly the contexts whose bucket is below w: 5% of
// them at 5, and the same ones plus more at 25. Bucket and OnNewSide compute
// the same in Go. The bucketing string is not fractional's default (flag key
// + targeting key) on purpose: a flag's own fractional rules use that, and
// the split would line up with them (at 25% the whole new side would be in
// the first arm of a 50/50 experiment). A context without a targeting key stays on
// the old side until 100.
//
// NEW and OLD each yield, in the merged flag, the variant name that side's
// definition alone resolves, or null where it gives the caller's code
// default:
//
//   - DISABLED or absent: null.
//   - No targeting: the side's defaultVariant.
//   - Targeting T: T's result, where T returns null the side's
//     defaultVariant ({"if": [{"===": [T, null]}, default, ...]}; T is
//     written twice rather than bound, as JSONLogic has no variables), and
//     T's result mapped to the merged variant names when they differ
//     ({"if": [{"===": [{"cat": [T]}, "blue"]}, "blue-new", ...]}; cat
//     makes the booleans and numbers flagd turns into names into names).
//     A name the side does not have but the merged flag does maps to a name
//     neither has, so that it stays the error it is for the side alone.
//
// The merged flag is ENABLED; its variants are the served sides' variants,
// with a new-side variant renamed "<name>-new" (then -new-2, ...) where the
// old side has the same name with another value; its defaultVariant is null
// (the code default) when either side may need the code default, else the
// old side's. Metadata and other fields are new's. A flag whose variants
// change type (say boolean to string) cannot be split: Rollout refuses it.
// A DISABLED flag resolves with reason DISABLED and the code default; under
// the split the same context gets the code default with reason DEFAULT.
//
// # Evaluation
//
// Document.Evaluate (and Evaluate, which parses first) resolves a flag for
// an evaluation context as flagd does, with flagd-core 4 as the reference:
// DISABLED gives the code default; no targeting the defaultVariant
// (STATIC); targeting runs as JSONLogic over the context plus the injected
// "$flagd" {flagKey, timestamp}, a null result falls back to the
// defaultVariant (DEFAULT, or the code default when that is null), and any
// other result names the variant as JavaScript turns it into text (so true
// names "true"). A name that is no variant, or a failing rule, is ERROR
// (GENERAL); a rule with a part that fails whatever the context is ERROR
// (PARSE_ERROR) for every context, as flagd-core refuses it when it
// compiles the rule. A parsed Document is safe to evaluate from many
// goroutines. The operators are the ones Parse accepts, with
// json-logic-engine's semantics where JSONLogic engines differ (see
// jsonlogic.go) and flagd's fractional, sem_ver, starts_with and
// ends_with. An evaluation is bounded in nesting depth, operations and
// string length, and Parse bounds the size of targeting with $ref
// resolved, so a hostile document fails instead of hanging the caller.
// fractional hashes UTF-8 as flagd does (flagd-core differs for targeting
// keys that are not ASCII; see Bucket).
//
// The conformance test checks all of this against flagd's own evaluator,
// the npm package @openfeature/flagd-core.
package flags
