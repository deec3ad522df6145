// Package flagd runs flagd's own evaluator, the npm package
// @openfeature/flagd-core, for tests: it installs the package into a
// cache folder outside the repository and evaluates flag documents over
// evaluation contexts with Node.js.
package flagd

import (
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// CoreVersion is the @openfeature/flagd-core release the tests use.
const CoreVersion = "4.0.1"

//go:embed evaluate.js
var evaluateJS []byte

// Install installs @openfeature/flagd-core into a cache folder (once) and
// returns the folder. It skips the test only when the npm registry cannot
// be reached.
func Install(t testing.TB) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache folder for the npm install: %v", err)
	}
	dir := filepath.Join(base, "serin", "npm", "flagd-core-"+CoreVersion)
	pkg := filepath.Join(dir, "node_modules", "@openfeature", "flagd-core", "package.json")
	if installedVersion(pkg) == CoreVersion {
		return dir
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("checking against flagd-core needs %s (Node.js 20 or later): %v", tool, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "flagd-core-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", tmp, "--no-audit", "--no-fund",
		"@openfeature/flagd-core@"+CoreVersion)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if unreachable.Match(out) {
			t.Skipf("SKIP: the npm registry cannot be reached, so @openfeature/flagd-core@%s cannot be installed: %s",
				CoreVersion, lastLines(out, 3))
		}
		t.Fatalf("npm install @openfeature/flagd-core@%s: %v\n%s", CoreVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && installedVersion(pkg) != CoreVersion {
		// Another run may have installed it meanwhile; anything else fails.
		_ = os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatalf("moving the npm install into %s: %v", dir, err)
		}
	}
	if v := installedVersion(pkg); v != CoreVersion {
		t.Fatalf("installed @openfeature/flagd-core is %q, want %s", v, CoreVersion)
	}
	return dir
}

// unreachable matches npm's errors for a registry it cannot reach.
var unreachable = regexp.MustCompile(`ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network request|socket hang up`)

func installedVersion(pkg string) string {
	b, err := os.ReadFile(pkg)
	if err != nil {
		return ""
	}
	var p struct{ Version string }
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Version
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Doc is a flags document to evaluate, and the flags to evaluate in it.
type Doc struct {
	Text  string   `json:"text"`
	Flags []string `json:"flags"`
}

// Evaluation is what flagd-core made of a Doc. SchemaError is set when
// strict parsing (flagd's schema) refuses the document. Results holds,
// per flag, one result per context: JSON [variant, value] when a variant
// resolves, "~<reason or error code>" when the caller gets its code
// default.
type Evaluation struct {
	SchemaError *string             `json:"schemaError"`
	Results     map[string][]string `json:"results"`
}

// Evaluate evaluates every document over every context with flagd-core
// installed in dir (Install), in one Node.js run.
func Evaluate(t testing.TB, dir string, docs map[string]Doc, contexts []map[string]any) map[string]Evaluation {
	t.Helper()
	tmp := t.TempDir()
	in, err := json.Marshal(map[string]any{"docs": docs, "contexts": contexts})
	if err != nil {
		t.Fatal(err)
	}
	script, inPath, outPath := filepath.Join(tmp, "evaluate.js"), filepath.Join(tmp, "in.json"), filepath.Join(tmp, "out.json")
	if err := os.WriteFile(script, evaluateJS, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, in, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "node", script, dir, inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("node evaluate.js: %v\n%s", err, out)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]Evaluation
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
