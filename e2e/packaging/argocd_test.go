package packaging_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// argoCDConfig reads kustomize/argocd/argocd-cm.yaml: the health check and
// the actions' discovery and action scripts, by action name.
func argoCDConfig(t *testing.T) (health, discovery string, actions map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "kustomize", "argocd", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	health = cm.Data["resource.customizations.health.serin.dev_Canary"]
	var acts struct {
		Discovery   string `json:"discovery.lua"`
		Definitions []struct {
			Name   string `json:"name"`
			Action string `json:"action.lua"`
		} `json:"definitions"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["resource.customizations.actions.serin.dev_Canary"]), &acts); err != nil {
		t.Fatal(err)
	}
	actions = map[string]string{}
	for _, d := range acts.Definitions {
		actions[d.Name] = d.Action
	}
	if health == "" || acts.Discovery == "" || len(actions) == 0 {
		t.Fatalf("argocd-cm.yaml lacks the health check or the actions")
	}
	return health, acts.Discovery, actions
}

// runLua runs script as Argo CD does: with the resource as the global obj,
// Lua's standard libraries open, and the script's return value as result.
func runLua(t *testing.T, script string, obj map[string]any) any {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("running the script: %v", err)
	}
	return fromLua(L.Get(-1))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		tb := L.NewTable()
		for _, e := range v {
			tb.Append(toLua(L, e))
		}
		return tb
	case map[string]any:
		tb := L.NewTable()
		for k, e := range v {
			tb.RawSetString(k, toLua(L, e))
		}
		return tb
	}
	panic(fmt.Sprintf("no Lua value for %T", v))
}

func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return float64(v)
	case *lua.LTable:
		if v.MaxN() > 0 {
			var out []any
			v.ForEach(func(_, e lua.LValue) { out = append(out, fromLua(e)) })
			return out
		}
		out := map[string]any{}
		v.ForEach(func(k, e lua.LValue) { out[k.String()] = fromLua(e) })
		return out
	}
	return nil
}

// canaryIn is a Canary in phase as the controller's conditions show it
// (setPhaseConditions): Ready for Initialized and Succeeded, Stalled for
// Failed and for a Canary that cannot work as written, Reconciling for the
// phases of a release.
func canaryIn(phase string, mods ...func(obj map[string]any)) map[string]any {
	var conditions []any
	switch phase {
	case "Initialized", "Succeeded":
		conditions = []any{map[string]any{"type": "Ready", "status": "True", "message": "podinfo-primary serves podinfo"}}
	case "Failed":
		conditions = []any{
			map[string]any{"type": "Stalled", "status": "True", "message": "Rolled back podinfo: 2 failed checks"},
			map[string]any{"type": "Ready", "status": "False", "message": "Rolled back podinfo: 2 failed checks"},
		}
	default:
		conditions = []any{
			map[string]any{"type": "Reconciling", "status": "True", "message": "Advancing podinfo"},
			map[string]any{"type": "Ready", "status": "Unknown", "message": "Advancing podinfo"},
		}
	}
	obj := map[string]any{
		"apiVersion": "serin.dev/v1beta1", "kind": "Canary",
		"metadata": map[string]any{"name": "podinfo", "namespace": "apps", "generation": int64(4)},
		"spec":     map[string]any{"targetRef": map[string]any{"name": "podinfo"}},
		"status":   map[string]any{"phase": phase, "observedGeneration": int64(4), "conditions": conditions},
	}
	for _, m := range mods {
		m(obj)
	}
	return obj
}

// TestArgoCD_HealthCheck runs the health check of argocd-cm.yaml with
// gopher-lua against Canaries in every phase.
func TestArgoCD_HealthCheck(t *testing.T) {
	health, _, _ := argoCDConfig(t)
	newGeneration := func(obj map[string]any) { obj["metadata"].(map[string]any)["generation"] = int64(5) }
	paused := func(obj map[string]any) { obj["status"].(map[string]any)["paused"] = true }
	suspended := func(obj map[string]any) { obj["spec"].(map[string]any)["suspend"] = true }
	for _, tc := range []struct {
		name, phase string
		mods        []func(map[string]any)
		want        string
	}{
		{"no status yet", "", []func(map[string]any){func(obj map[string]any) { delete(obj, "status") }}, "Progressing"},
		{"Initializing", "Initializing", nil, "Progressing"},
		{"Initialized", "Initialized", nil, "Healthy"},
		{"Waiting", "Waiting", nil, "Progressing"},
		{"Progressing", "Progressing", nil, "Progressing"},
		{"WaitingPromotion", "WaitingPromotion", nil, "Progressing"},
		{"Promoting", "Promoting", nil, "Progressing"},
		{"Finalising", "Finalising", nil, "Progressing"},
		{"Succeeded", "Succeeded", nil, "Healthy"},
		{"Failed", "Failed", nil, "Degraded"},
		{"Terminating", "Terminating", nil, "Progressing"},
		{"Succeeded for an older generation", "Succeeded", []func(map[string]any){newGeneration}, "Progressing"},
		{"a paused analysis", "Progressing", []func(map[string]any){paused}, "Suspended"},
		{"spec.suspend", "Progressing", []func(map[string]any){suspended}, "Suspended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			hs, ok := runLua(t, health, canaryIn(tc.phase, tc.mods...)).(map[string]any)
			g.Expect(ok).To(BeTrue(), "the health check returns a table")
			g.Expect(hs["status"]).To(Equal(tc.want))
			g.Expect(hs["message"]).NotTo(BeEmpty())
		})
	}
}

// TestArgoCD_Actions runs the actions' discovery in every phase and each
// action's script: it writes the operation annotations kubectl serin
// writes, keeping the Canary's other annotations.
func TestArgoCD_Actions(t *testing.T) {
	_, discovery, actions := argoCDConfig(t)
	g := NewWithT(t)
	g.Expect(actions).To(HaveLen(6))
	enabled := func(obj map[string]any) []string {
		found := runLua(t, discovery, obj).(map[string]any)
		var out []string
		for name, a := range found {
			if a.(map[string]any)["disabled"] != true {
				out = append(out, name)
			}
		}
		return out
	}
	paused := func(obj map[string]any) { obj["status"].(map[string]any)["paused"] = true }
	g.Expect(enabled(canaryIn("Progressing"))).To(ConsistOf("promote", "promote-full", "abort", "pause"))
	g.Expect(enabled(canaryIn("Progressing", paused))).To(ConsistOf("promote", "promote-full", "abort", "resume"))
	g.Expect(enabled(canaryIn("WaitingPromotion"))).To(ConsistOf("promote", "promote-full", "abort", "pause"))
	g.Expect(enabled(canaryIn("Promoting"))).To(ConsistOf("abort", "pause"))
	g.Expect(enabled(canaryIn("Failed"))).To(ConsistOf("retry"))
	g.Expect(enabled(canaryIn("Succeeded"))).To(BeEmpty())
	g.Expect(enabled(canaryIn("Initializing"))).To(BeEmpty())

	for name, script := range actions {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			obj := canaryIn("Progressing")
			obj["metadata"].(map[string]any)["annotations"] = map[string]any{"team": "shop"}
			out := runLua(t, script, obj).(map[string]any)
			a := out["metadata"].(map[string]any)["annotations"].(map[string]any)
			g.Expect(a).To(HaveKeyWithValue("serin.dev/operation", name))
			g.Expect(a).To(HaveKeyWithValue("serin.dev/operation-by", "argocd"))
			g.Expect(a).To(HaveKeyWithValue("team", "shop"))
			id, err := time.Parse(time.RFC3339, a["serin.dev/operation-id"].(string))
			g.Expect(err).NotTo(HaveOccurred(), "operation-id is the request time")
			g.Expect(time.Since(id)).To(BeNumerically("<", time.Minute))
		})
	}
}

// TestArgoCD_ApplicationLeavesReplicasToSerin: the example Application
// keeps Argo CD from syncing the target's replica count back.
func TestArgoCD_ApplicationLeavesReplicasToSerin(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join(repoRoot, "kustomize", "argocd", "application.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var app struct {
		Kind string `json:"kind"`
		Spec struct {
			IgnoreDifferences []struct {
				Group        string   `json:"group"`
				Kind         string   `json:"kind"`
				JSONPointers []string `json:"jsonPointers"`
			} `json:"ignoreDifferences"`
			SyncPolicy struct {
				SyncOptions []string `json:"syncOptions"`
			} `json:"syncPolicy"`
		} `json:"spec"`
	}
	g.Expect(yaml.Unmarshal(raw, &app)).To(Succeed())
	g.Expect(app.Kind).To(Equal("Application"))
	g.Expect(app.Spec.IgnoreDifferences).To(ContainElement(And(
		HaveField("Group", "apps"), HaveField("Kind", "Deployment"), HaveField("JSONPointers", ContainElement("/spec/replicas")))))
	g.Expect(app.Spec.SyncPolicy.SyncOptions).To(ContainElement("RespectIgnoreDifferences=true"))
}
