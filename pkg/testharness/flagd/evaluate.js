// Evaluates flags documents with flagd-core, for the tests that check
// documents against flagd's own evaluator (package flagd runs it).
//
//   node evaluate.js <flagd-core install dir> <input.json> <output.json>
//
// input:  {"docs": {"<name>": {"text": "<flags.json text>", "flags": ["<flag key>", ...]}, ...},
//          "contexts": [{...evaluation context...}, ...]}
// output: {"<name>": {"schemaError": null | "<message>",
//                     "results": {"<flag key>": ["<result>", ...]}}}
//
// A result is JSON [variant, value] when flagd resolves a variant, and
// "~<reason or error code>" when the caller gets its code default (the flag
// is disabled or missing, or resolves no variant).
'use strict';

const fs = require('fs');
const path = require('path');

const [dir, inputPath, outputPath] = process.argv.slice(2);
const { FlagdCore, MemoryStorage } = require(path.join(dir, 'node_modules', '@openfeature', 'flagd-core'));

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const output = {};

for (const [name, { text, flags: keys }] of Object.entries(input.docs)) {
  // Strict parsing validates against the flagd schema flagd-core ships
  // (compiled into the package) and throws on a violation.
  let schemaError = null;
  try {
    new MemoryStorage(quiet).setConfigurations(text, true);
  } catch (err) {
    schemaError = String(err.message);
  }
  const core = new FlagdCore(undefined, quiet);
  core.setConfigurations(text);
  const flags = JSON.parse(text).flags;
  const results = {};
  for (const key of keys) {
    const flag = flags[key];
    const type = flag ? typeof Object.values(flag.variants)[0] : 'boolean';
    const out = new Array(input.contexts.length);
    input.contexts.forEach((ctx, i) => {
      const r = core.resolve(type, key, undefined, ctx, quiet);
      if (r.errorCode || r.reason === 'DISABLED' || r.variant === undefined) {
        out[i] = '~' + (r.errorCode || r.reason);
      } else {
        out[i] = JSON.stringify([r.variant, r.value]);
      }
    });
    results[key] = out;
  }
  output[name] = { schemaError, results };
}

fs.writeFileSync(outputPath, JSON.stringify(output));
