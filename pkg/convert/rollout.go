package convert

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Values the converter chooses where a Rollout has none.
const (
	defaultInterval = time.Minute
	// minInterval is the shortest interval Serin's CRD accepts.
	minInterval = 10 * time.Second
	// gateURL is serin-tester's manual gate, as in Serin's examples.
	gateURL = "http://serin-tester.test/gate/check"
)

// Rollout converts an Argo Rollouts Rollout into a Serin Canary and, unless
// the Rollout references its workload with workloadRef, a Deployment of the
// same name built from the Rollout's selector, template and replicas: Serin
// analyses Deployments, not Rollouts. related are objects the Rollout may
// reference (typically the rest of its manifests): the metrics of its
// AnalysisTemplates and ClusterAnalysisTemplates become the Canary's
// metrics, and its stable or active Service gives the Canary's port. The
// error reports a pod template or selector that does not decode.
func Rollout(obj map[string]any, related []map[string]any) (*appsv1.Deployment, *serinv1.Canary, []Warning, error) {
	t := newTracker(obj)
	d, c, err := convertRollout(t, related)
	return d, c, t.finish(), err
}

func convertRollout(t *tracker, related []map[string]any) (*appsv1.Deployment, *serinv1.Canary, error) {
	root := t.root()
	root.get("apiVersion").use()
	root.get("kind").use()
	meta := metav1.ObjectMeta{}
	if err := fromMap(copyMeta(t), &meta); err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	markKnown(root.get("metadata"), reflect.TypeFor[metav1.ObjectMeta]())
	spec := root.get("spec")

	c := &serinv1.Canary{
		TypeMeta:   metav1.TypeMeta{APIVersion: serinv1.GroupVersion.String(), Kind: serinv1.CanaryKind},
		ObjectMeta: *meta.DeepCopy(),
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: meta.Name},
		},
	}
	r := &rollout{t: t, c: c, related: related, renames: map[string]string{}}

	d, err := r.workload(spec, meta)
	if err != nil {
		return nil, nil, err
	}
	if v, ok := spec.get("progressDeadlineSeconds").integer(); ok {
		c.Spec.ProgressDeadlineSeconds = ptr(int32(v))
	}
	if a := spec.get("progressDeadlineAbort"); a.exists() {
		a.warn("not supported: Serin always rolls back a canary that misses its progress deadline")
	}
	c.Spec.Suspend, _ = spec.get("paused").boolean()

	strategy := spec.get("strategy")
	switch {
	case strategy.get("canary").exists():
		r.canary(strategy.get("canary"))
	case strategy.get("blueGreen").exists():
		r.blueGreen(strategy.get("blueGreen"))
	default:
		t.note("spec.strategy", "neither canary nor blueGreen; the Canary gets a 1m interval and one blue/green iteration")
		c.Spec.Analysis.Interval = formatDuration(defaultInterval)
		c.Spec.Analysis.Iterations = 1
	}
	r.servicePort()
	return d, c, nil
}

// rollout holds the state of one Rollout's conversion.
type rollout struct {
	t       *tracker
	c       *serinv1.Canary
	related []map[string]any
	// apexPath is the path of the stable or active Service, which names
	// the apex Service.
	apexPath string
	// renames maps the Rollout's canary or preview Service to Serin's.
	renames map[string]string
	// podSpec is the Rollout's pod spec, for the Service port.
	podSpec *corev1.PodSpec
	// failureLimits are the failureLimit of every converted metric.
	failureLimits []int64
	// canaryStrategy is set for strategy.canary, whose steps, not the
	// metrics, set the pace.
	canaryStrategy bool
}

// workload returns the Deployment for the Rollout's pod template, or nil
// when the Rollout points at an existing Deployment with workloadRef.
func (r *rollout) workload(spec node, meta metav1.ObjectMeta) (*appsv1.Deployment, error) {
	if ref := spec.get("workloadRef"); ref.exists() {
		kind, _ := ref.get("kind").str()
		apiVersion, _ := ref.get("apiVersion").str()
		name, _ := ref.get("name").str()
		if kind != "Deployment" || apiVersion != "apps/v1" {
			ref.warn("%s %s is not a Deployment, which Serin needs: targetRef names a Deployment %s to create", apiVersion, kind, r.c.Spec.TargetRef.Name)
		} else {
			r.c.Spec.TargetRef.Name = name
		}
		if s := ref.get("scaleDown"); s.exists() {
			s.warn("not supported: Serin scales the target to zero once its primary copy is ready")
		}
		return nil, nil
	}

	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
	}
	if v, ok := spec.get("replicas").integer(); ok {
		d.Spec.Replicas = ptr(int32(v))
	}
	if v, ok := spec.get("minReadySeconds").integer(); ok {
		d.Spec.MinReadySeconds = int32(v)
	}
	if v, ok := spec.get("revisionHistoryLimit").integer(); ok {
		d.Spec.RevisionHistoryLimit = ptr(int32(v))
	}
	if sel := spec.get("selector"); sel.exists() {
		d.Spec.Selector = &metav1.LabelSelector{}
		if err := fromMap(sel.v, d.Spec.Selector); err != nil {
			return nil, fmt.Errorf("spec.selector: %w", err)
		}
		markKnown(sel, reflect.TypeFor[metav1.LabelSelector]())
	}
	tmpl := spec.get("template")
	if !tmpl.exists() {
		tmpl.note("absent, and no workloadRef: no Deployment emitted; the Canary targets Deployment %s", meta.Name)
		return nil, nil
	}
	if err := fromMap(tmpl.v, &d.Spec.Template); err != nil {
		return nil, fmt.Errorf("spec.template: %w", err)
	}
	markKnown(tmpl, reflect.TypeFor[corev1.PodTemplateSpec]())
	r.podSpec = &d.Spec.Template.Spec
	tmpl.note("Serin analyses Deployments: the pod template, selector and replicas are emitted as Deployment %s, which the Canary targets; apply both and delete the Rollout", meta.Name)
	return d, nil
}

// servicePort sets the Canary's Service port from the Rollout's stable or
// active Service when the input has it, else from the first container port:
// a Rollout has no port of its own.
func (r *rollout) servicePort() {
	svc := &r.c.Spec.Service
	if svc.Name != "" {
		r.t.note(r.apexPath, "Serin manages Service %s (the apex, pointed at the primary) and generates %s-primary and %s-canary; remove it from your manifests", svc.Name, svc.Name, svc.Name)
		if obj := r.find("v1", "Service", svc.Name); obj != nil {
			var s corev1.Service
			if err := fromMap(obj, &s); err == nil && len(s.Spec.Ports) > 0 {
				p := s.Spec.Ports[0]
				svc.Port, svc.PortName, svc.TargetPort = p.Port, p.Name, p.TargetPort
				return
			}
		}
	}
	if r.podSpec != nil {
		for _, ctr := range r.podSpec.Containers {
			if len(ctr.Ports) > 0 {
				p := ctr.Ports[0]
				svc.Port = p.ContainerPort
				if p.Name != "" {
					svc.PortName = p.Name
					svc.TargetPort = intstr.FromString(p.Name)
				}
				r.t.note("spec.template.spec.containers", "spec.service.port is the first container port, %d; if clients use another Service port, set port and targetPort", p.ContainerPort)
				return
			}
		}
	}
	svc.Port = 80
	r.t.note("spec.template.spec.containers", "no container port: spec.service.port is a placeholder, 80; set the port of the Rollout's Services")
}

func (r *rollout) canary(n node) {
	r.canaryStrategy = true
	a := &r.c.Spec.Analysis
	if s, ok := n.get("stableService").str(); ok {
		r.c.Spec.Service.Name = s
		r.apexPath = n.get("stableService").path
	}
	if s, ok := n.get("canaryService").str(); ok {
		r.renames[s] = r.apex() + "-canary"
		n.get("canaryService").warn("Serin serves the canary on the Service %s-canary it creates; Service %s is no longer used", r.apex(), s)
	}
	r.trafficRouting(n.get("trafficRouting"))

	var weights []int
	var pauses []node
	manual := -1
	steps := n.get("steps").list()
	for i, step := range steps {
		for _, k := range step.keys() {
			v := step.get(k)
			switch k {
			case "setWeight":
				w, ok := v.integer()
				if !ok {
					continue
				}
				if w < 1 || w > 100 || (len(weights) > 0 && int(w) <= weights[len(weights)-1]) {
					v.warn("dropped: Serin's weights are between 1 and 100 and strictly increasing")
					continue
				}
				weights = append(weights, int(w))
			case "pause":
				if d := v.get("duration"); d.exists() {
					pauses = append(pauses, d)
				} else {
					v.use()
					manual = i
				}
			case "analysis":
				r.metrics(v)
				v.note("Serin checks metrics at every interval; this step's analysis runs throughout the release")
			default:
				v.warn("not supported")
			}
		}
	}
	if manual >= 0 {
		r.confirmPromotion(fmt.Sprintf("%s.steps[%d].pause", n.path, manual), "an indefinite pause")
		if len(weights) > 0 && manual < len(steps)-1 {
			r.t.note(fmt.Sprintf("%s.steps[%d].pause", n.path, manual), "Serin gates the promotion, not this step; a confirm-traffic-increase webhook gates every weight step")
		}
	}
	a.Interval = formatDuration(r.interval(n.get("steps"), pauses))

	switch {
	case len(weights) == 0:
		a.Iterations = max(1, len(pauses))
		n.get("steps").note("no setWeight step: converted to %d blue/green iteration(s), one per pause", a.Iterations)
	case uniform(weights):
		a.StepWeight = weights[0]
		a.MaxWeight = weights[len(weights)-1]
	default:
		a.StepWeights = weights
	}

	if bg := n.get("analysis"); bg.exists() {
		r.metrics(bg)
		if s := bg.get("startingStep"); s.exists() {
			s.warn("not supported: Serin checks metrics from the first interval")
		}
	}
	r.threshold()
}

// interval is the time between weight steps, from the pause durations.
func (r *rollout) interval(steps node, pauses []node) time.Duration {
	var longest time.Duration
	var all []string
	for _, p := range pauses {
		if d, ok := argoDuration(p); ok {
			all = append(all, formatDuration(d))
			longest = max(longest, d)
		}
	}
	switch {
	case longest == 0:
		steps.note("no pause duration: interval, the time between two steps, set to %s", formatDuration(defaultInterval))
		return defaultInterval
	case longest < minInterval:
		steps.note("pauses of %s: interval set to Serin's minimum, %s", formatDuration(longest), formatDuration(minInterval))
		return minInterval
	}
	if slices.ContainsFunc(all, func(s string) bool { return s != all[0] }) {
		steps.note("pauses differ (%s): Serin waits one interval between all steps; interval set to the longest, %s", strings.Join(all, ", "), formatDuration(longest))
	}
	return longest
}

func uniform(weights []int) bool {
	for i, w := range weights {
		if w != (i+1)*weights[0] {
			return false
		}
	}
	return true
}

func (r *rollout) trafficRouting(n node) {
	if !n.exists() {
		n.note("absent: Argo's replica-count canary has no Serin equivalent, Serin shifts traffic through a router; spec.provider is left to the controller's default")
		return
	}
	for _, k := range n.keys() {
		v := n.get(k)
		switch k {
		case "istio":
			r.c.Spec.Provider = serinv1.ProviderIstio
			for _, f := range v.keys() {
				v.get(f).warn("Serin generates the VirtualService %s and the DestinationRules %s-primary and %s-canary; copy hosts and gateways into spec.service and delete these", r.apex(), r.apex(), r.apex())
			}
		case "nginx":
			r.c.Spec.Provider = serinv1.ProviderNGINX
			r.nginx(v)
		case "plugins":
			for _, p := range v.keys() {
				if p == "argoproj-labs/gatewayAPI" {
					r.c.Spec.Provider = serinv1.ProviderGatewayAPI
					v.get(p).warn("Serin generates the HTTPRoute %s; set spec.service.gatewayRefs and hosts from the plugin's route", r.apex())
				} else {
					v.get(p).warn("no Serin router for this plugin")
				}
			}
		default:
			v.warn("no Serin router for %s (Serin has %s)", k, routerList())
		}
	}
}

func (r *rollout) nginx(n node) {
	ingress, ok := n.get("stableIngress").str()
	if list := n.get("stableIngresses").list(); len(list) > 0 {
		ingress, ok = list[0].str()
		for _, extra := range list[1:] {
			extra.warn("not supported: Serin's nginx router copies one Ingress")
		}
	}
	if ok {
		r.c.Spec.IngressRef = &serinv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: ingress}
	}
	if p := n.get("annotationPrefix"); p.exists() {
		p.warn("not supported per Canary: set the controller's --nginx-annotation-prefix")
	}
}

func (r *rollout) blueGreen(n node) {
	r.c.Spec.Provider = serinv1.ProviderKubernetes
	a := &r.c.Spec.Analysis
	if s, ok := n.get("activeService").str(); ok {
		r.c.Spec.Service.Name = s
		r.apexPath = n.get("activeService").path
	}
	if s, ok := n.get("previewService").str(); ok {
		r.renames[s] = r.apex() + "-canary"
		n.get("previewService").warn("Serin serves the new revision on the Service %s-canary it creates; Service %s is no longer used", r.apex(), s)
	}
	if auto, ok := n.get("autoPromotionEnabled").boolean(); ok && !auto {
		r.confirmPromotion(n.get("autoPromotionEnabled").path, "autoPromotionEnabled: false")
	}
	if post := n.get("postPromotionAnalysis"); post.exists() {
		post.warn("not supported: Serin analyses before promotion only; a post-rollout webhook can run checks but not roll back")
	}

	// Argo measures each metric count times, interval apart; Serin runs
	// the analysis iterations times, interval apart.
	metrics := r.metrics(n.get("prePromotionAnalysis"))
	interval, iterations := defaultInterval, int64(1)
	for _, m := range metrics {
		if m.interval > 0 {
			interval = max(m.interval, minInterval)
		}
		iterations = max(iterations, m.count)
	}
	if s, ok := n.get("autoPromotionSeconds").integer(); ok {
		iterations = max(iterations, (s*int64(time.Second)+int64(interval)-1)/int64(interval))
	}
	a.Interval = formatDuration(interval)
	a.Iterations = int(iterations)
	r.threshold()
}

// metrics adds the metrics of the templates an Argo analysis (a canary
// step, background or pre-promotion analysis) references, and its args as
// template variables.
func (r *rollout) metrics(n node) []argoMetric {
	if !n.exists() {
		return nil
	}
	vars := map[string]string{}
	for _, arg := range n.get("args").list() {
		name, _ := arg.get("name").str()
		if v, ok := arg.get("value").str(); ok {
			vars[name] = v
		} else if vf := arg.get("valueFrom"); vf.exists() {
			vf.warn("not supported: set the Canary metric's templateVariables.%s by hand", name)
		}
	}
	if d := n.get("dryRun"); d.exists() {
		d.warn("not supported: Serin has no dry-run metrics")
	}
	var all []argoMetric
	for _, ref := range n.get("templates").list() {
		name, _ := ref.get("templateName").str()
		cluster, _ := ref.get("clusterScope").boolean()
		kind := "AnalysisTemplate"
		if cluster {
			kind = "ClusterAnalysisTemplate"
		}
		obj := r.find(argoGroup+"/v1alpha1", kind, name)
		if obj == nil {
			ref.warn("%s %s is not in the input: convert it with the Rollout to get its metrics", kind, name)
			continue
		}
		tmpl, err := readAnalysisTemplate(newTracker(obj))
		if err != nil {
			ref.warn("%s %s cannot be read: %v", kind, name, err)
			continue
		}
		for _, m := range tmpl.metrics {
			if m.template == "" {
				ref.note("metric %s of %s %s has no prometheus provider and was not converted", m.name, kind, name)
				continue
			}
			if r.canaryStrategy && (m.interval > 0 || m.count > 0) {
				ref.note("metric %s: interval and count do not apply, Serin checks every metric once per analysis interval", m.name)
			}
			r.addMetric(ref, m, tmpl, vars)
			all = append(all, m)
		}
	}
	return all
}

// find returns the related object of that kind and name in the Rollout's
// namespace (cluster-scoped ones have none).
func (r *rollout) find(apiVersion, kind, name string) map[string]any {
	for _, obj := range r.related {
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		if obj["apiVersion"] == apiVersion && obj["kind"] == kind && meta["name"] == name &&
			(ns == r.c.Namespace || ns == "" || r.c.Namespace == "") {
			return obj
		}
	}
	return nil
}

// addMetric adds a template's metric with the template's argument defaults
// and the analysis args as variables. Values naming the Rollout's canary or
// preview Service name Serin's canary Service instead.
func (r *rollout) addMetric(ref node, m argoMetric, tmpl argoTemplate, args map[string]string) {
	a := &r.c.Spec.Analysis
	name := m.name
	if slices.ContainsFunc(a.Metrics, func(cm serinv1.CanaryMetric) bool { return cm.Name == name }) {
		name = m.template
	}
	cm := serinv1.CanaryMetric{
		Name:                  name,
		TemplateRef:           &serinv1.CrossNamespaceObjectReference{Name: m.template},
		ThresholdRange:        m.rng,
		SuccessCondition:      m.success,
		FailureCondition:      m.failure,
		ConsecutiveErrorLimit: m.consecutiveErrorLimit,
	}
	if m.rng == nil && m.success == "" && m.failure == "" {
		ref.warn("metric %s has neither successCondition nor failureCondition, so Argo Rollouts counts every measurement it takes as a success; Serin refuses a metric without a bound: add thresholdRange, successCondition or failureCondition", m.name)
	}
	for _, k := range tmpl.argNames {
		v, ok := args[k]
		if !ok {
			v, ok = tmpl.args[k]
		}
		if !ok {
			ref.note("argument %s has no value: set templateVariables.%s of metric %s", k, k, name)
			continue
		}
		for old, svc := range r.renames {
			if v == old || strings.HasPrefix(v, old+".") {
				ref.note("argument %s named Service %s, now %s", k, old, svc)
				v = svc + strings.TrimPrefix(v, old)
			}
		}
		setVar(&cm, k, v)
	}
	a.Metrics = append(a.Metrics, cm)
	r.failureLimits = append(r.failureLimits, m.failureLimit)
}

func setVar(cm *serinv1.CanaryMetric, k, v string) {
	if cm.TemplateVariables == nil {
		cm.TemplateVariables = map[string]string{}
	}
	cm.TemplateVariables[k] = v
}

// threshold maps Argo's failureLimit, the failed measurements a metric
// tolerates, to Serin's threshold, the failed checks that roll back: the
// strictest metric wins, as Serin counts failures across metrics.
func (r *rollout) threshold() {
	if len(r.failureLimits) == 0 {
		return
	}
	r.c.Spec.Analysis.Threshold = int(slices.Min(r.failureLimits)) + 1
	if slices.Min(r.failureLimits) != slices.Max(r.failureLimits) {
		r.t.note("spec.strategy", "the metrics' failureLimits differ (%v): Serin counts failed checks of all metrics together; threshold set from the lowest", r.failureLimits)
	}
}

// confirmPromotion adds a confirm-promotion webhook in place of Argo's
// manual promotion.
func (r *rollout) confirmPromotion(path, why string) {
	a := &r.c.Spec.Analysis
	a.Webhooks = append(a.Webhooks, serinv1.CanaryWebhook{Name: "confirm-promotion", Type: serinv1.ConfirmPromotionHook, URL: gateURL})
	r.t.note(path, "%s is a manual promotion: added a confirm-promotion webhook on serin-tester's gate (%s) as a placeholder; point it at your approval endpoint", why, gateURL)
}

// apex is the name of the Service Serin generates routes for.
func (r *rollout) apex() string {
	if n := r.c.Spec.Service.Name; n != "" {
		return n
	}
	return r.c.Spec.TargetRef.Name
}

func ptr[T any](v T) *T { return &v }

// routerList names the providers Serin routes through, aliases left out.
func routerList() string {
	var names []string
	for _, p := range serinv1.Providers() {
		if p.Canonical() == p {
			names = append(names, string(p))
		}
	}
	return strings.Join(names, ", ")
}
