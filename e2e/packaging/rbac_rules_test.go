package packaging_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// use is one piece of code that needs a permission: a pattern that must
// match the (non-test) Go file at path. When the code changes so that no
// use of a verb is left, the test fails and the verb must go from the
// manifests, or the evidence be pointed at the new code.
type use struct {
	path    string
	pattern string
}

// permission is the verbs the controller's code uses on one resource, and
// the code that uses each.
type permission map[string][]use

// controllerPermissions is every resource the controller touches
// ("<group>/<resource>", "" for the core group) with the verbs its code
// uses. Reads through the informer cache (the manager's client for kinds
// not in ClientOptions' DisableFor, and every Watches) need get, list and
// watch; reads around it (the APIReader, ConfigMaps and Secrets) need only
// get or list; server-side apply is a PATCH the apiserver also authorizes
// as create when the object does not exist yet.
var controllerPermissions = map[string]permission{
	"serin.dev/canaries": {
		"get":   {{"pkg/controller/canary_controller.go", `r\.APIReader\.Get\(ctx, req\.NamespacedName`}},
		"list":  {{"pkg/controller/canary_manager.go", `For\(&serinv1\.Canary\{\}`}},
		"watch": {{"pkg/controller/canary_manager.go", `For\(&serinv1\.Canary\{\}`}},
		// The finalizer, by merge patch.
		"patch": {{"pkg/controller/canary_patcher.go", `p\.client\.Patch\(ctx, meta`}},
	},
	"serin.dev/canaries/status": {
		"patch": {{"pkg/controller/canary_patcher.go", `p\.client\.Status\(\)\.Patch\(`}},
	},
	// Not a call: OwnerReferencesPermissionEnforcement requires update on
	// the owner's finalizers to set blockOwnerDeletion, which controller
	// references do.
	"serin.dev/canaries/finalizers": {
		"update": {{"pkg/workload/history.go", `metav1\.NewControllerRef\(canary`}},
	},
	"serin.dev/metrictemplates": cachedRead(use{"pkg/checks/metrics/checker.go", `c\.Reader\.Get\(ctx, client\.ObjectKey\{Namespace: ns, Name: ref\.Name\}, &tmpl\)`}),
	"serin.dev/alertproviders":  cachedRead(use{"pkg/controller/canary_alerts.go", `r\.Get\(ctx, client\.ObjectKey\{Namespace: ns, Name: a\.ProviderRef\.Name\}, &p\)`}),
	"apps/deployments":          workloadPermission("Deployment"),
	"apps/daemonsets":           workloadPermission("DaemonSet"),
	"apps/controllerrevisions": {
		"list":   {{"pkg/workload/history.go", `w\.history\.List\(ctx, &list`}, {"pkg/controller/setup.go", `opts\.HistoryReader = reader`}},
		"create": {{"pkg/workload/history.go", `w\.client\.Create\(ctx, cr\)`}},
		"delete": {{"pkg/workload/history.go", `w\.deleteOwned\(ctx, canary, cr\)`}},
	},
	"autoscaling/horizontalpodautoscalers": merge(
		cachedRead(use{"pkg/workload/read.go", `w\.reader\.Get\(ctx, client\.ObjectKey\{Namespace: canary\.Namespace, Name: ref\.Name\}, hpa\)`}),
		applied(use{"pkg/workload/sync.go", `w\.applyOwned\(ctx, canary, desiredHPA`}),
		permission{"delete": {{"pkg/workload/revert.go", `w\.deleteOwned\(ctx, canary, hpa\)`}}},
	),
	"/services": merge(
		cachedRead(use{"pkg/controller/canary_manager.go", `Watches\(&corev1\.Service\{\}`}),
		applied(use{"pkg/service/service.go", `apply\.Apply\(ctx, ap, w, live, exists\)`}),
		applied(use{"pkg/apply/apply.go", `a\.Client\.Apply\(ctx, client\.ApplyConfigurationFromUnstructured\(u\)`}),
		// The apex Service handed back on revertOnDeletion.
		permission{"patch": {{"pkg/service/service.go", `a\.Client\.Patch\(ctx, &apex`}}},
		permission{"delete": {{"pkg/service/service.go", `a\.applier\(\)\.Delete\(ctx, c, &corev1\.Service`}, {"pkg/apply/apply.go", `a\.Client\.Delete\(ctx, obj, client\.Preconditions`}}},
	),
	"/configmaps": configPermission("ConfigMap"),
	// The same as ConfigMaps, plus the secretRefs of MetricTemplates,
	// AlertProviders and webhooks (get) and the Secrets of kept revisions
	// (created, deleted with them).
	"/secrets": merge(configPermission("Secret"), permission{
		"get": {
			{"pkg/checks/metrics/checker.go", `c\.Reader\.Get\(ctx, client\.ObjectKey\{Namespace: tmpl\.Namespace, Name: name\}, &secret\)`},
			{"pkg/controller/canary_alerts.go", `Name: p\.Spec\.SecretRef\.Name\}, &s\)`},
			{"pkg/controller/canary_checks.go", `Name: h\.SecretRef\.Name\}, &secret\)`},
		},
		"create": {{"pkg/workload/history.go", `w\.client\.Create\(ctx, secret\)`}},
	}),
	// The core/v1 recorder: create, then patch to count repeats; and the
	// decisions' Events, created by name (announcements.go).
	"/events": {
		"create": {{"pkg/controller/setup.go", `events\.NewRecorder\(`}, {"cmd/serin/main.go", `LeaderElection:\s+o\.leaderElection\.Enable`}, {"pkg/controller/announcements.go", `r\.Create\(ctx, e\)`}},
		"patch":  {{"pkg/controller/setup.go", `events\.NewRecorder\(`}, {"cmd/serin/main.go", `LeaderElection:\s+o\.leaderElection\.Enable`}},
	},
	// controller-runtime's Lease lock: get, create, then update to renew.
	"coordination.k8s.io/leases": {
		"get":    {{"cmd/serin/main.go", `LeaderElectionResourceLock:\s+"leases"`}},
		"create": {{"cmd/serin/main.go", `LeaderElectionResourceLock:\s+"leases"`}},
		"update": {{"cmd/serin/main.go", `LeaderElectionResourceLock:\s+"leases"`}},
	},
	// Routers read around the cache (get), apply, and delete on
	// revertOnDeletion.
	"networking.istio.io/virtualservices":  routerPermission("istio.go", "ir"),
	"networking.istio.io/destinationrules": routerPermission("istio.go", "ir"),
	"projectcontour.io/httpproxies":        routerPermission("contour.go", "k"),
	"networking.k8s.io/ingresses":          routerPermission("nginx.go", "n"),
	"gateway.networking.k8s.io/httproutes": routerPermission("gatewayapi.go", "g"),
}

// userPermissions are what the aggregated ClusterRoles give people: read
// for view, and the writes of kubectl (and kubectl-serin's annotations) for
// edit and admin.
var (
	userResources = []string{"serin.dev/canaries", "serin.dev/metrictemplates", "serin.dev/alertproviders"}
	viewVerbs     = []string{"get", "list", "watch"}
	editVerbs     = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

func cachedRead(u use) permission {
	return permission{"get": {u}, "list": {u}, "watch": {u}}
}

func applied(u use) permission {
	return permission{"create": {u}, "patch": {u}}
}

func merge(ps ...permission) permission {
	out := permission{}
	for _, p := range ps {
		for verb, uses := range p {
			out[verb] = append(out[verb], uses...)
		}
	}
	return out
}

// workloadPermission is a target kind: watched as target and primary,
// the primary applied and deleted, the target scaled by merge patch and
// its template replaced by JSON patch.
func workloadPermission(kind string) permission {
	return merge(
		cachedRead(use{"pkg/controller/canary_manager.go", `Watches\(&appsv1\.` + kind + `\{\}`}),
		applied(use{"pkg/workload/apply.go", `apply\.Apply\(ctx, w\.applier\(\)`}),
		applied(use{"pkg/apply/apply.go", `a\.Client\.Apply\(ctx, client\.ApplyConfigurationFromUnstructured\(u\)`}),
		permission{"patch": {{"pkg/workload/apply.go", `w\.client\.Patch\(ctx, obj, client\.RawPatch\(types\.MergePatchType`}, {"pkg/workload/history.go", `client\.RawPatch\(types\.JSONPatchType`}}},
		permission{"delete": {{"pkg/workload/revert.go", `w\.deleteOwned\(ctx, canary, primary\)`}}},
	)
}

// configPermission is a ConfigMap or Secret: read around the cache,
// watched metadata-only, the -primary copies applied, patched back on a
// restore, listed and deleted on revertOnDeletion.
func configPermission(kind string) permission {
	return permission{
		"get":    {{"pkg/workload/configs.go", `w\.reader\.Get\(ctx, client\.ObjectKey\{Namespace: ns, Name: r\.name\}, obj\)`}, {"pkg/controller/setup.go", `DisableFor: \[\]client\.Object\{.*&corev1\.` + kind + `\{\}`}},
		"list":   {{"pkg/controller/canary_manager.go", `Watches\(&corev1\.` + kind + `\{\}.*builder\.OnlyMetadata`}, {"pkg/workload/apply.go", `w\.reader\.List\(ctx, &`}},
		"watch":  {{"pkg/controller/canary_manager.go", `Watches\(&corev1\.` + kind + `\{\}.*builder\.OnlyMetadata`}},
		"create": {{"pkg/workload/apply.go", `apply\.Apply\(ctx, w\.applier\(\)`}},
		"patch":  {{"pkg/workload/apply.go", `apply\.Apply\(ctx, w\.applier\(\)`}, {"pkg/workload/history.go", `w\.patch\(ctx, obj, body\)`}},
		"delete": {{"pkg/workload/apply.go", `w\.deleteOwned\(ctx, canary, obj\)`}},
	}
}

func routerPermission(file, recv string) permission {
	path := "pkg/router/" + file
	return permission{
		"get":    {{path, `&apply\.Applier\{Reader: ` + recv + `\.Reader`}, {"pkg/apply/apply.go", `a\.Reader\.Get\(ctx, r\.key\(\), live\)`}, {"pkg/controller/canary_controller.go", `Reader:\s+r\.APIReader`}},
		"create": {{path, `apply\.Apply\(ctx, a,`}, {"pkg/apply/apply.go", `a\.Client\.Apply\(ctx, client\.ApplyConfigurationFromUnstructured\(u\)`}},
		"patch":  {{path, `apply\.Apply\(ctx, a,`}, {"pkg/apply/apply.go", `a\.Client\.Apply\(ctx, client\.ApplyConfigurationFromUnstructured\(u\)`}},
		"delete": {{path, `\.Delete\(ctx, r\.Canary, `}, {"pkg/apply/apply.go", `a\.Client\.Delete\(ctx, obj, client\.Preconditions`}},
	}
}

// grant is one verb on one resource.
type grant struct{ resource, verb string }

func (g grant) String() string { return g.verb + " " + g.resource }

// problems collects what checkRoles finds wrong.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// roleGrants flattens the rules of a Role or ClusterRole, reporting what
// the test cannot check: wildcards, nonResourceURLs, aggregationRules
// (whose rules come from elsewhere).
func roleGrants(role *unstructured.Unstructured, p *problems) []grant {
	where := fmt.Sprintf("%s %s/%s", role.GetKind(), role.GetNamespace(), role.GetName())
	if _, ok := role.Object["aggregationRule"]; ok {
		p.add("%s: has an aggregationRule", where)
	}
	rules, _, err := unstructured.NestedSlice(role.Object, "rules")
	if err != nil {
		p.add("%s: %v", where, err)
		return nil
	}
	var out []grant
	for i, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			p.add("%s rule %d: %v", where, i, r)
			continue
		}
		list := func(key string) []string {
			items, _, err := unstructured.NestedStringSlice(rule, key)
			if err != nil {
				p.add("%s rule %d: %s: %v", where, i, key, err)
			}
			for _, item := range items {
				if strings.Contains(item, "*") {
					p.add("%s rule %d: wildcard %q in %s", where, i, item, key)
				}
			}
			return items
		}
		groups, resources, verbs := list("apiGroups"), list("resources"), list("verbs")
		list("resourceNames")
		if urls := list("nonResourceURLs"); len(urls) > 0 {
			p.add("%s rule %d: nonResourceURLs %v: the controller calls none", where, i, urls)
		}
		if len(groups) == 0 || len(resources) == 0 || len(verbs) == 0 {
			p.add("%s rule %d grants nothing: %v", where, i, rule)
		}
		for _, g := range groups {
			for _, res := range resources {
				for _, v := range verbs {
					out = append(out, grant{g + "/" + res, v})
				}
			}
		}
	}
	return out
}

// aggregatedInto says into which built-in user-facing ClusterRoles a
// ClusterRole is aggregated.
func aggregatedInto(role *unstructured.Unstructured) []string {
	var into []string
	for _, r := range []string{"view", "edit", "admin"} {
		if role.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+r] == "true" {
			into = append(into, r)
		}
	}
	return into
}

// checkRoles checks every Role and ClusterRole of an install: no
// wildcards; the controller's roles grant only verbs its code uses and,
// with wantAll, every one of them but the routers'; the aggregated roles
// only Serin's kinds with the verbs of their level. It returns the names
// of the aggregated roles by level.
func checkRoles(objs []*unstructured.Unstructured, wantAll bool) (map[string][]string, problems) {
	var p problems
	granted := map[grant]bool{}
	aggregated := map[string][]string{}
	roles := append(ofKind(objs, "ClusterRole"), ofKind(objs, "Role")...)
	if len(roles) == 0 {
		p.add("no Role or ClusterRole")
	}
	for _, role := range roles {
		where := fmt.Sprintf("%s %s/%s", role.GetKind(), role.GetNamespace(), role.GetName())
		grants := roleGrants(role, &p)
		if into := aggregatedInto(role); len(into) > 0 {
			if role.GetKind() != "ClusterRole" {
				p.add("%s: aggregation labels on a %s", where, role.GetKind())
			}
			allowed := viewVerbs
			if slices.Contains(into, "edit") || slices.Contains(into, "admin") {
				allowed = editVerbs
			}
			for _, level := range into {
				aggregated[level] = append(aggregated[level], role.GetName())
			}
			for _, g := range grants {
				if !slices.Contains(userResources, g.resource) || !slices.Contains(allowed, g.verb) {
					p.add("%s (aggregated into %v) grants %s", where, into, g)
				}
			}
			continue
		}
		for _, g := range grants {
			if _, ok := controllerPermissions[g.resource][g.verb]; !ok {
				p.add("%s grants %s, which no code of the controller uses", where, g)
			}
			granted[g] = true
		}
	}
	if wantAll {
		var missing []string
		for res, perm := range controllerPermissions {
			if isRouterResource(res) {
				continue
			}
			for verb := range perm {
				if !granted[grant{res, verb}] {
					missing = append(missing, verb+" "+res)
				}
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			p.add("the controller's code uses what no role grants: %v", missing)
		}
	}
	return aggregated, p
}

func isRouterResource(res string) bool {
	for _, g := range []string{"networking.istio.io/", "projectcontour.io/", "networking.k8s.io/", "gateway.networking.k8s.io/"} {
		if strings.HasPrefix(res, g) {
			return true
		}
	}
	return false
}

// TestRBAC_EveryVerbIsUsedByTheCode checks that each verb of
// controllerPermissions is still backed by the code it names.
func TestRBAC_EveryVerbIsUsedByTheCode(t *testing.T) {
	sources := map[string]string{}
	for res, p := range controllerPermissions {
		for verb, uses := range p {
			if len(uses) == 0 {
				t.Errorf("%s %s: no use given", verb, res)
			}
			for _, u := range uses {
				src, ok := sources[u.path]
				if !ok {
					data, err := os.ReadFile(filepath.Join(repoRoot, u.path))
					if err != nil {
						t.Errorf("%s %s: %v", verb, res, err)
						continue
					}
					src = string(data)
					sources[u.path] = src
				}
				if !regexp.MustCompile(u.pattern).MatchString(src) {
					t.Errorf("%s %s: %s no longer matches %q: if the code stopped needing it, drop the verb from artifacts/rbac and charts/serin/templates; otherwise point the test at the code that does", verb, res, u.path, u.pattern)
				}
			}
		}
	}
}

func TestRBAC_KustomizeRulesAreTheCodesOnly(t *testing.T) {
	for _, dir := range append(kustomizations(t, "kustomize"), kustomizations(t, "artifacts/rbac")...) {
		t.Run(dir, func(t *testing.T) {
			objs := kustomizeBuild(t, dir)
			if len(ofKind(objs, "ClusterRole"))+len(ofKind(objs, "Role")) == 0 {
				return // the example, the CRDs, the Deployment
			}
			// The installs (every overlay, base) grant all the controller
			// needs; pieces of artifacts/rbac only what it uses.
			install := strings.HasPrefix(dir, "kustomize"+string(filepath.Separator))
			aggregated, problems := checkRoles(objs, install)
			NewWithT(t).Expect(problems).To(BeEmpty())
			if install && dir != filepath.Join("kustomize", "namespaced") {
				NewWithT(t).Expect(aggregated).To(Equal(map[string][]string{
					"view":  {"serin-aggregate-to-view"},
					"edit":  {"serin-aggregate-to-edit"},
					"admin": {"serin-aggregate-to-edit"},
				}))
			}
		})
	}
}

func TestRBAC_ChartRulesAreTheCodesOnly(t *testing.T) {
	for name, values := range helmCases {
		t.Run(name, func(t *testing.T) {
			objs := mustRender(t, values)
			aggregated, problems := checkRoles(objs, !strings.Contains(values, "leaderElection: {enabled: false}"))
			NewWithT(t).Expect(problems).To(BeEmpty())
			want := map[string][]string{
				"view":  {"serin-aggregate-to-view"},
				"edit":  {"serin-aggregate-to-edit"},
				"admin": {"serin-aggregate-to-edit"},
			}
			if strings.Contains(values, "namespaced: true") || strings.Contains(values, "aggregateClusterRoles: false") {
				want = map[string][]string{}
			}
			NewWithT(t).Expect(aggregated).To(Equal(want))
		})
	}
}

// TestRBAC_CheckCatchesBadRules runs checkRoles on rules it must reject.
func TestRBAC_CheckCatchesBadRules(t *testing.T) {
	role := func(labels map[string]any, rules ...map[string]any) []*unstructured.Unstructured {
		rs := make([]any, len(rules))
		for i, r := range rules {
			rs[i] = r
		}
		meta := map[string]any{"name": "bad"}
		if labels != nil {
			meta["labels"] = labels
		}
		return []*unstructured.Unstructured{{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": meta, "rules": rs,
		}}}
	}
	rule := func(group, resource string, verbs ...any) map[string]any {
		return map[string]any{"apiGroups": []any{group}, "resources": []any{resource}, "verbs": verbs}
	}
	view := map[string]any{"rbac.authorization.k8s.io/aggregate-to-view": "true"}
	edit := map[string]any{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}
	for name, c := range map[string]struct {
		objs    []*unstructured.Unstructured
		wantAll bool
		want    string
	}{
		"wildcard verb":           {objs: role(nil, rule("apps", "deployments", "*")), want: `wildcard "*" in verbs`},
		"wildcard resource":       {objs: role(nil, rule("apps", "*", "get")), want: `wildcard "*" in resources`},
		"wildcard subresource":    {objs: role(nil, rule("serin.dev", "canaries/*", "patch")), want: `wildcard "canaries/*" in resources`},
		"wildcard group":          {objs: role(nil, rule("*", "deployments", "get")), want: `wildcard "*" in apiGroups`},
		"wildcard on view":        {objs: role(view, rule("serin.dev", "*", "get")), want: `wildcard "*" in resources`},
		"unused verb":             {objs: role(nil, rule("apps", "deployments", "update")), want: "grants update apps/deployments, which no code"},
		"unused resource":         {objs: role(nil, rule("", "pods", "get")), want: "grants get /pods, which no code"},
		"write on view":           {objs: role(view, rule("serin.dev", "canaries", "patch")), want: "grants patch serin.dev/canaries"},
		"other kind on edit":      {objs: role(edit, rule("apps", "deployments", "get")), want: "grants get apps/deployments"},
		"missing controller verb": {objs: role(nil, rule("serin.dev", "canaries", "get")), wantAll: true, want: "uses what no role grants"},
	} {
		t.Run(name, func(t *testing.T) {
			_, problems := checkRoles(c.objs, c.wantAll)
			NewWithT(t).Expect(problems).To(ContainElement(ContainSubstring(c.want)))
		})
	}
}
