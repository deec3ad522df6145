// Evaluates JSONLogic targeting rules with flagd-core's engine (its
// json-logic-engine with flagd's fractional, sem_ver, starts_with and
// ends_with), for the operator tests of package flags.
//
//   node rules.js <flagd-core install dir> <input.json> <output.json>
//
// input:  [{"flagKey": "<key>", "rule": {...}, "context": {...}}, ...]
// output: ["<JSON of the rule's result>" | "!<error>", ...]
//
// A rule whose result is undefined gives "null" (flagd treats both alike);
// a rule flagd-core refuses to build or that throws gives "!" and a reason.
'use strict';

const fs = require('fs');
const path = require('path');

const [dir, inputPath, outputPath] = process.argv.slice(2);
const { FeatureFlag } = require(path.join(dir, 'node_modules', '@openfeature', 'flagd-core'));

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const output = input.map(({ flagKey, rule, context }) => {
  const flag = new FeatureFlag(flagKey, { state: 'ENABLED', variants: { x: 'x' }, defaultVariant: null, targeting: rule }, quiet);
  if (!flag._targeting) {
    return '!parse';
  }
  try {
    const r = flag._targeting.evaluate(flagKey, context, quiet);
    return r === undefined ? 'null' : JSON.stringify(r);
  } catch (err) {
    return '!throw ' + (err && err.message ? err.message : JSON.stringify(err));
  }
});
fs.writeFileSync(outputPath, JSON.stringify(output));
