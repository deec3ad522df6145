package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// execute runs the plugin in-process.
func execute(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const flaggerProvider = `apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: on-call
spec:
  type: slack
  secretRef:
    name: on-call-url
`

const serinProvider = `apiVersion: serin.dev/v1beta1
kind: AlertProvider
metadata:
  name: on-call
spec:
  secretRef:
    name: on-call-url
  type: slack
`

const unsupported = `apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: pager
spec:
  type: slack
  address: https://hooks.example.com/x
  team: sre
`

func TestConvertStdin(t *testing.T) {
	for _, args := range [][]string{{"convert"}, {"convert", "-f", "-"}} {
		stdout, stderr, code := execute(t, flaggerProvider, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, stderr)
		}
		if stdout != serinProvider {
			t.Errorf("%v: stdout\n%s\nwant\n%s", args, stdout, serinProvider)
		}
	}
}

func TestConvertWarnings(t *testing.T) {
	file := writeFile(t, t.TempDir(), "pager.yaml", unsupported)
	stdout, stderr, code := execute(t, "", "convert", "-f", file)
	if code != 0 {
		t.Errorf("code %d, want 0", code)
	}
	if want := "warning: AlertProvider/pager spec.team: not supported\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if !strings.Contains(stdout, "apiVersion: serin.dev/v1beta1") || strings.Contains(stdout, "team") {
		t.Errorf("stdout is not the converted provider:\n%s", stdout)
	}
}

func TestConvertStrict(t *testing.T) {
	stdout, stderr, code := execute(t, unsupported, "convert", "--strict")
	if code != 2 {
		t.Errorf("with warnings: code %d, want 2", code)
	}
	if !strings.Contains(stderr, "warning: AlertProvider/pager spec.team") || !strings.Contains(stderr, "error: 1 warning(s) with --strict") {
		t.Errorf("stderr %q", stderr)
	}
	if !strings.Contains(stdout, "kind: AlertProvider") {
		t.Errorf("--strict withheld the output:\n%s", stdout)
	}
	if _, stderr, code := execute(t, flaggerProvider, "convert", "--strict"); code != 0 || stderr != "" {
		t.Errorf("without warnings: code %d, stderr %q", code, stderr)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		stdin  string
		args   []string
		stderr string
	}{
		{name: "parse error", stdin: "kind: [\n", args: []string{"convert"}, stderr: "error: document 1: "},
		{name: "missing file", args: []string{"convert", "-f", filepath.Join(dir, "nope.yaml")}, stderr: "no such file"},
		{name: "unexpected argument", args: []string{"convert", "x.yaml"}, stderr: "unknown command"},
		{name: "unknown command", args: []string{"lisst"}, stderr: `unknown command "lisst"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := execute(t, c.stdin, c.args...)
			if code != 1 || stdout != "" || !strings.Contains(stderr, c.stderr) {
				t.Errorf("code %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, c.stderr)
			}
		})
	}
}

// TestConvertSeveralInputs converts a Rollout and its AnalysisTemplate from
// different files and a directory: the Canary gets the template's metric.
func TestConvertSeveralInputs(t *testing.T) {
	dir := t.TempDir()
	rollout := writeFile(t, dir, "rollout.yaml", `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: demo
spec:
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
        - name: demo
          image: demo:1
          ports: [{containerPort: 8080}]
  strategy:
    canary:
      trafficRouting:
        istio: {}
      analysis:
        templates: [{templateName: success-rate}]
      steps:
        - setWeight: 20
        - pause: {duration: 1m}
        - setWeight: 40
        - pause: {duration: 1m}
`)
	templates := filepath.Join(dir, "templates")
	if err := os.Mkdir(templates, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, templates, "success-rate.yml", `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  metrics:
    - name: success-rate
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: http://prometheus:9090
          query: sum(up)
`)
	writeFile(t, templates, "README.md", "not a manifest")

	stdout, stderr, code := execute(t, "", "convert", "-f", rollout, "-f", templates)
	if code != 0 {
		t.Fatalf("code %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"kind: Deployment", "kind: Canary", "kind: MetricTemplate", "stepWeight: 20", "min: 0.95", "templateRef:\n        name: success-rate"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stderr, "not in the input") {
		t.Errorf("the template in the directory was not found: %s", stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := execute(t, "", "version")
	want := "kubectl-serin dev (commit unknown) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if code != 0 || stdout != want {
		t.Errorf("code %d, stdout %q, want %q", code, stdout, want)
	}
}

// TestVersionLdflags builds the plugin the way a release does and checks
// that -X buildinfo.Version and Commit reach the version command.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "kubectl-serin")
	build := exec.Command(gobin, "build", "-o", bin, "-ldflags", "-X github.com/serin-dev/serin/pkg/buildinfo.Version=v1.2.3 -X github.com/serin-dev/serin/pkg/buildinfo.Commit=abc1234", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "kubectl-serin v1.2.3 (commit abc1234) go") {
		t.Errorf("version printed %q", out)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		stdout, _, code := execute(t, "", "completion", shell)
		if code != 0 || !strings.Contains(stdout, "kubectl-serin") {
			t.Errorf("%s: code %d, script without the command name", shell, code)
		}
	}
	// Completing "conv" offers the convert command.
	stdout, _, _ := execute(t, "", "__complete", "conv")
	if !strings.Contains(stdout, "convert") {
		t.Errorf("__complete conv: %q", stdout)
	}
}
