package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/flagrelease"
	"github.com/serin-dev/serin/pkg/flags"
	"github.com/serin-dev/serin/pkg/testharness/flagd"
)

const (
	flagsV1 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}}}`
	// v2 turns new-checkout on everywhere but in DE; banner's metadata
	// alone changes, which is no change to roll out.
	flagsV2 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
    "targeting": {"if": [{"==": [{"var": "country"}, "DE"]}, "off", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red", "metadata": {"owner": "web"}}}}`
	// v3 switches banner to blue.
	flagsV3 = `{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
    "targeting": {"if": [{"==": [{"var": "country"}, "DE"]}, "off", null]}},
  "banner": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "blue"}}}`
)

func newFlagCanary(ns, name, target string, mods ...func(*serinv1.Canary)) *serinv1.Canary {
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			TargetRef:               serinv1.TargetReference{APIVersion: "v1", Kind: "ConfigMap", Name: target},
			Flags:                   &serinv1.FlagsSpec{Key: "flags.json"},
			ProgressDeadlineSeconds: new(int32(120)),
			Analysis:                serinv1.CanaryAnalysis{Interval: "10s", Threshold: 2, StepWeights: []int{20, 50}},
		},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func setFlags(g Gomega, ns, name, doc string) {
	cm := get(g, ns, name, &corev1.ConfigMap{})
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["flags.json"] = doc
	g.Expect(k8sClient.Patch(context.Background(), cm, patch)).To(Succeed())
}

// primarySnapshots records each distinct content of a flag rollout's
// primary, in order, by its split annotation and flags document.
type primarySnapshots struct {
	mu    sync.Mutex
	seen  []primarySnapshot
	close func()
}

type primarySnapshot struct {
	split, revision, doc string
}

func recordPrimary(t *testing.T, ns, name string) *primarySnapshots {
	ctx, cancel := context.WithCancel(context.Background())
	r := &primarySnapshots{close: cancel}
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var cm corev1.ConfigMap
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err == nil {
				s := primarySnapshot{split: cm.Annotations[flagrelease.SplitAnnotation], revision: cm.Annotations[serinv1.RevisionAnnotation], doc: cm.Data["flags.json"]}
				r.mu.Lock()
				if len(r.seen) == 0 || r.seen[len(r.seen)-1] != s {
					r.seen = append(r.seen, s)
				}
				r.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *primarySnapshots) splits() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		if s.split != "" && !slices.Contains(out, s.split) {
			out = append(out, s.split)
		}
	}
	return out
}

func (r *primarySnapshots) docAt(split string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s.split == split {
			return s.doc
		}
	}
	return ""
}

// checkSplit evaluates new-checkout in the document the primary served at
// weight w for 2,000 users: each gets what v1 or v2 alone gives it, and
// the share that gets v2's answer where the two differ is w within 5
// points.
func checkSplit(t *testing.T, doc string, w int) {
	t.Helper()
	served, err := flags.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the primary at weight %d does not parse: %v\n%s", w, err, doc)
	}
	v1, _ := flags.Parse([]byte(flagsV1))
	v2, _ := flags.Parse([]byte(flagsV2))
	const users = 2000
	onNew, differ := 0, 0
	for i := range users {
		ctx := map[string]any{"targetingKey": fmt.Sprintf("user-%d", i), "country": []string{"US", "DE", "FR", "CA"}[i%4]}
		got, err1 := served.Evaluate("new-checkout", ctx)
		old, err2 := v1.Evaluate("new-checkout", ctx)
		nw, err3 := v2.Evaluate("new-checkout", ctx)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("evaluating for %v: %v %v %v", ctx, err1, err2, err3)
		}
		if got.Value != old.Value && got.Value != nw.Value {
			t.Fatalf("weight %d: %v gets %v, neither v1's %v nor v2's %v", w, ctx, got.Value, old.Value, nw.Value)
		}
		if old.Value != nw.Value {
			differ++
			if got.Value == nw.Value {
				onNew++
			}
		}
		if b, _ := served.Evaluate("banner", ctx); b.Value != "red" {
			t.Fatalf("weight %d: banner, which did not change, gives %v", w, b.Value)
		}
	}
	share := 100 * float64(onNew) / float64(differ)
	if share < float64(w)-5 || share > float64(w)+5 {
		t.Errorf("weight %d: %.1f%% of the users whose answer changes get the new one", w, share)
	}
}

// checkWithFlagd evaluates the documents the primary served, by weight,
// with flagd's own evaluator (@openfeature/flagd-core) for 10,000 users
// and 100 contexts without a targeting key: flagd's schema accepts each;
// every flag gives each context what v1 or v2 alone gives it, v2's where
// flags.OnNewSide says; the share of users on the new side is the weight
// within 2 points; and a user on the new side stays there as the weight
// grows.
func checkWithFlagd(t *testing.T, served map[int]string) {
	t.Helper()
	dir := flagd.Install(t)
	var contexts []map[string]any
	const users = 10000
	for i := range users + 100 {
		c := map[string]any{"country": []string{"US", "DE", "FR", "CA", "JP"}[i%5]}
		if i < users {
			c["targetingKey"] = fmt.Sprintf("%08x-user", i*2654435761%(1<<32))
		}
		contexts = append(contexts, c)
	}
	keys := []string{"new-checkout", "banner"}
	docs := map[string]flagd.Doc{"v1": {Text: flagsV1, Flags: keys}, "v2": {Text: flagsV2, Flags: keys}}
	var weights []int
	for w, doc := range served {
		docs[fmt.Sprint(w)] = flagd.Doc{Text: doc, Flags: keys}
		weights = append(weights, w)
	}
	slices.Sort(weights)
	res := flagd.Evaluate(t, dir, docs, contexts)
	for name, e := range res {
		if e.SchemaError != nil {
			t.Errorf("flagd's schema refuses the document at %s: %s", name, *e.SchemaError)
		}
	}
	wasNew := map[int]bool{}
	for _, w := range weights {
		got := res[fmt.Sprint(w)]
		onNew := 0
		for i, c := range contexts {
			tk, _ := c["targetingKey"].(string)
			newSide := flags.OnNewSide("new-checkout", tk, w)
			for _, k := range keys {
				want := res["v1"].Results[k][i]
				if newSide && k == "new-checkout" {
					want = res["v2"].Results[k][i]
				}
				if got.Results[k][i] != want {
					t.Fatalf("weight %d, flag %s, context %v: flagd gives %s, want %s", w, k, c, got.Results[k][i], want)
				}
			}
			if newSide && i < users {
				onNew++
			}
			if wasNew[i] && !newSide {
				t.Fatalf("context %v left the new side at weight %d", c, w)
			}
			wasNew[i] = newSide
		}
		if share := 100 * float64(onNew) / users; share < float64(w)-2 || share > float64(w)+2 {
			t.Errorf("weight %d: %.1f%% of the users are on the new side", w, share)
		}
	}
}

// TestCanaryReconciler_FlagRollout: a Canary whose target is a ConfigMap of
// flagd flags keeps <target>-primary, rolls a changed flag out at each step
// weight as a split flagd evaluates, promotes the new definitions, and on
// failing checks restores the promoted ones, on the real API server.
func TestCanaryReconciler_FlagRollout(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name, target := newNamespace(t), "payments-flags", "flagd-config"
	hooks := newHookServer(t, 200)
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1, "other": "x"}},
		newFlagCanary(ns, name, target, func(c *serinv1.Canary) {
			c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.RolloutHook, URL: hooks.URL + "/smoke"}}
		}))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))

	v1, _ := flags.Parse([]byte(flagsV1))
	v2, _ := flags.Parse([]byte(flagsV2))
	primary := get(g, ns, target+"-primary", &corev1.ConfigMap{})
	g.Expect(primary.Data).To(Equal(map[string]string{"flags.json": flagsV1, "other": "x"}), "the primary starts as a copy of the target")
	g.Expect(metav1.IsControlledBy(primary, get(g, ns, name, &serinv1.Canary{}))).To(BeTrue())
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.LastPromotedSpec).To(Equal(flags.Revision(v1)))
	g.Expect(c.Status.TrackedConfigs).To(HaveKey("configmap/" + target))

	// A release: the changed flag goes to 20%, then 50%, then everyone.
	snaps := recordPrimary(t, ns, target+"-primary")
	phases := recordPhases(t, ns, name)
	setFlags(g, ns, target, flagsV2)
	g.Eventually(func() []serinv1.FlagChange { return get(g, ns, name, &serinv1.Canary{}).Status.Flags }, eventWait, poll).
		Should(Equal([]serinv1.FlagChange{{Key: "new-checkout", OldVariant: "off", NewVariant: "on"}}), "banner's metadata alone changed")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.Flags).To(BeEmpty(), "nothing left to roll out")
	rev2 := flags.Revision(v2)
	g.Eventually(snaps.splits, 5*time.Second, poll).Should(Equal([]string{rev2 + "/20", rev2 + "/50"}), "each step written once, in order")
	checkSplit(t, snaps.docAt(rev2+"/20"), 20)
	checkSplit(t, snaps.docAt(rev2+"/50"), 50)
	t.Run("flagd-core evaluates the splits as written", func(t *testing.T) {
		checkWithFlagd(t, map[int]string{20: snaps.docAt(rev2 + "/20"), 50: snaps.docAt(rev2 + "/50")})
	})
	primary = get(g, ns, target+"-primary", &corev1.ConfigMap{})
	g.Expect(primary.Data["flags.json"]).To(Equal(flagsV2), "promotion writes the new definitions as they are")
	g.Expect(primary.Annotations).To(HaveKeyWithValue(serinv1.RevisionAnnotation, rev2))
	g.Expect(primary.Annotations).NotTo(HaveKey(flagrelease.SplitAnnotation))
	g.Expect(phases.since(serinv1.CanaryPhaseProgressing)).To(ContainElements(serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseSucceeded))
	g.Expect(hooks.count("/smoke")).To(Equal(2), "one rollout check per step")
	var kept appsv1.ControllerRevisionList
	g.Expect(k8sClient.List(context.Background(), &kept, client.InNamespace(ns), client.MatchingLabels{serinv1.KeptRevisionLabel: name})).To(Succeed())
	g.Expect(kept.Items).To(HaveLen(1))
	g.Expect(kept.Items[0].Annotations).To(HaveKeyWithValue(serinv1.RevisionAnnotation, flags.Revision(v1)))

	// A bad release: its checks fail, and the primary is v2 again.
	hooks.status.Store(500)
	setFlags(g, ns, target, flagsV3)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() string { return get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"] }, 10*time.Second, poll).
		Should(Equal(flagsV2), "the rollback restores the promoted document exactly")
	g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Annotations).NotTo(HaveKey(flagrelease.SplitAnnotation))
	c = get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.LastPromotedSpec).To(Equal(rev2))
	g.Expect(c.Status.Flags).To(Equal([]serinv1.FlagChange{{Key: "banner", OldVariant: "red", NewVariant: "blue"}}), "what was rolled back")
}

// TestCanaryReconciler_FlagRolloutBadInput: definitions flagd would refuse
// stall the Canary with a message that names the problem, and the primary
// is never written with them.
func TestCanaryReconciler_FlagRolloutBadInput(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name, target := newNamespace(t), "flags", "flagd-config"
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1}},
		newFlagCanary(ns, name, target))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))

	stalled := func() string {
		c := get(g, ns, name, &serinv1.Canary{})
		if !conditions.IsStalled(c) {
			return ""
		}
		return conditions.GetMessage(c, meta.StalledCondition)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"JSON that does not parse", `{"flags": {`, "key flags.json"},
		{"a variant that does not exist", strings.Replace(flagsV2, `"defaultVariant": "on"`, `"defaultVariant": "maybe"`, 1), "new-checkout"},
		{"an unknown state", strings.Replace(flagsV2, `"state": "ENABLED"`, `"state": "ON"`, 1), "new-checkout"},
	} {
		setFlags(g, ns, target, tc.doc)
		g.Eventually(stalled, eventWait, poll).Should(ContainSubstring(tc.want), tc.name)
		g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"]).To(Equal(flagsV1), tc.name)
	}

	// A missing key.
	cm := get(g, ns, target, &corev1.ConfigMap{})
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data = map[string]string{"flags.yaml": "x"}
	g.Expect(k8sClient.Patch(context.Background(), cm, patch)).To(Succeed())
	g.Eventually(stalled, eventWait, poll).Should(ContainSubstring(`has no key "flags.json"`))

	// Valid, but a flag's type cannot change gradually: the split is
	// refused before anything is written.
	cm = get(g, ns, target, &corev1.ConfigMap{})
	patch = client.MergeFrom(cm.DeepCopy())
	cm.Data = map[string]string{"flags.json": strings.NewReplacer(`"on": true, "off": false`, `"on": "yes", "off": "no"`).Replace(flagsV2)}
	g.Expect(k8sClient.Patch(context.Background(), cm, patch)).To(Succeed())
	g.Eventually(stalled, eventWait, poll).Should(And(ContainSubstring(`flag "new-checkout"`), ContainSubstring("change type")))
	g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"]).To(Equal(flagsV1))

	// Fixed, it runs again; a variant removed mid-rollout stalls it with
	// the split as it was, and restoring the variant lets it finish.
	setFlags(g, ns, target, flagsV2)
	g.Eventually(func() string {
		return get(g, ns, target+"-primary", &corev1.ConfigMap{}).Annotations[flagrelease.SplitAnnotation]
	}, release, poll).ShouldNot(BeEmpty())
	split := get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"]
	setFlags(g, ns, target, strings.Replace(flagsV2, `"variants": {"on": true, "off": false}, "defaultVariant": "on"`, `"variants": {"off": false}, "defaultVariant": "on"`, 1))
	g.Eventually(stalled, eventWait, poll).Should(And(ContainSubstring(`flag "new-checkout"`), ContainSubstring(`defaultVariant "on"`)))
	g.Consistently(func() string { return get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"] }, 3*time.Second, poll).
		Should(Equal(split), "the primary keeps serving the split it had")
	setFlags(g, ns, target, flagsV2)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data["flags.json"]).To(Equal(flagsV2))
}

// TestCanaryReconciler_FlagRolloutNeverAdopts: a ConfigMap of the primary's
// name that Serin did not create is left alone.
func TestCanaryReconciler_FlagRolloutNeverAdopts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name, target := newNamespace(t), "flags", "flagd-config"
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target + "-primary"}, Data: map[string]string{"mine": "1"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1}},
		newFlagCanary(ns, name, target))
	g.Eventually(func() string {
		c := get(g, ns, name, &serinv1.Canary{})
		return conditions.GetReason(c, meta.StalledCondition)
	}, eventWait, poll).Should(Equal(serinv1.NotOwnedReason))
	g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data).To(Equal(map[string]string{"mine": "1"}))

	g.Expect(k8sClient.Delete(context.Background(), get(g, ns, name, &serinv1.Canary{}))).To(Succeed())
	g.Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &serinv1.Canary{})
		return apierrors.IsNotFound(err)
	}, eventWait, poll).Should(BeTrue())
	g.Expect(get(g, ns, target+"-primary", &corev1.ConfigMap{}).Data).To(Equal(map[string]string{"mine": "1"}), "not deleted with the Canary")
}

// TestCanaryReconciler_FlagRolloutOperations: gates and manual operations
// drive a flag rollout as they drive a workload's. A closed
// confirm-promotion gate holds the split at the last weight; opening it
// promotes. abort mid-rollout serves the promoted definitions again, and
// undo puts a kept revision back; the kstatus conditions follow.
func TestCanaryReconciler_FlagRolloutOperations(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name, target := newNamespace(t), "flags", "flagd-config"
	gate := newHookServer(t, 403)
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1}},
		newFlagCanary(ns, name, target, func(c *serinv1.Canary) {
			c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "approval", Type: serinv1.ConfirmPromotionHook, URL: gate.URL + "/gate"}}
		}))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	v1, _ := flags.Parse([]byte(flagsV1))
	v2, _ := flags.Parse([]byte(flagsV2))
	rev1, rev2 := flags.Revision(v1), flags.Revision(v2)
	primary := func() *corev1.ConfigMap { return get(g, ns, target+"-primary", &corev1.ConfigMap{}) }

	setFlags(g, ns, target, flagsV2)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseWaitingPromotion))
	g.Expect(primary().Annotations).To(HaveKeyWithValue(flagrelease.SplitAnnotation, rev2+"/50"), "held at the last weight")
	g.Consistently(phaseOf(ns, name), "3s", poll).Should(Equal(serinv1.CanaryPhaseWaitingPromotion))
	gate.status.Store(200)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(primary().Data["flags.json"]).To(Equal(flagsV2))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(conditions.IsReady(c)).To(BeTrue())
	g.Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))

	// abort while the split is served.
	setFlags(g, ns, target, flagsV3)
	g.Eventually(func() string { return primary().Annotations[flagrelease.SplitAnnotation] }, release, poll).ShouldNot(BeEmpty())
	handled(g, ns, name, operate(g, ns, name, "abort"))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	g.Eventually(func() string { return primary().Data["flags.json"] }, eventWait, poll).Should(Equal(flagsV2), "the promoted definitions again")
	g.Expect(primary().Annotations).NotTo(HaveKey(flagrelease.SplitAnnotation))
	c = get(g, ns, name, &serinv1.Canary{})
	g.Expect(conditions.IsStalled(c)).To(BeTrue(), "a rolled-back release is Stalled, as kstatus reads Failed")

	// undo to the first revision, which was kept before the first split.
	handled(g, ns, name, operateWith(g, ns, name, "undo", map[string]string{serinv1.OperationRevisionAnnotation: rev1}))
	g.Eventually(func() string { return primary().Data["flags.json"] }, eventWait, poll).Should(Equal(flagsV1))
	g.Expect(primary().Annotations).To(HaveKeyWithValue(serinv1.RevisionAnnotation, rev1))
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.LastPromotedSpec).To(Equal(rev1))
}

// TestCanaryReconciler_FlagRolloutRevertOnDeletion: deleting a Canary with
// revertOnDeletion after a rolled-back flag change writes the promoted
// definitions back into the target, which holds the failed ones, before
// the primary goes, so that flagd reading the target serves what was
// analysed.
func TestCanaryReconciler_FlagRolloutRevertOnDeletion(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name, target := newNamespace(t), "flags", "flagd-config"
	hooks := newHookServer(t, 500)
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Data: map[string]string{"flags.json": flagsV1, "other": "x"}},
		newFlagCanary(ns, name, target, func(c *serinv1.Canary) {
			c.Spec.RevertOnDeletion = true
			c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "smoke", Type: serinv1.RolloutHook, URL: hooks.URL + "/smoke"}}
		}))
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseInitialized))
	setFlags(g, ns, target, flagsV2)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))

	g.Expect(k8sClient.Delete(context.Background(), get(g, ns, name, &serinv1.Canary{}))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &serinv1.Canary{}))
	}, release, poll).Should(BeTrue())
	cm := get(g, ns, target, &corev1.ConfigMap{})
	g.Expect(cm.Data).To(Equal(map[string]string{"flags.json": flagsV1, "other": "x"}), "the promoted definitions, the rest untouched")
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: target + "-primary"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the primary is deleted: %v", err)
	g.Eventually(func() []string { return events(g, ns, name, "RestoredTarget") }, eventWait, poll).ShouldNot(BeEmpty())
}
