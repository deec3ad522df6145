// Command serin is the Serin controller: it runs Canary releases.
package main

import (
	"context"
	goflag "flag"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/fluxcd/pkg/runtime/client"
	runtimectrl "github.com/fluxcd/pkg/runtime/controller"
	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/fluxcd/pkg/runtime/logger"
	"github.com/fluxcd/pkg/runtime/pprof"
	"github.com/fluxcd/pkg/runtime/probes"
	flag "github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/serin-dev/serin/pkg/alerts"
	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/buildinfo"
	"github.com/serin-dev/serin/pkg/checks/metrics/providers"
	"github.com/serin-dev/serin/pkg/controller"
	"github.com/serin-dev/serin/pkg/refpolicy"
	"github.com/serin-dev/serin/pkg/router"
	"github.com/serin-dev/serin/pkg/workload"
)

const controllerName = "serin"

// alertAddressEnv holds the default alert provider's webhook URL, which is a
// credential for most chat services.
const alertAddressEnv = "SERIN_ALERT_ADDRESS"

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(router.AddToScheme(scheme))
}

// options are the controller's own flags; client, logger and leader
// election flags come from fluxcd/pkg/runtime.
type options struct {
	metricsAddr             string
	healthAddr              string
	concurrent              int
	watchNamespace          string
	watchLabelSelector      string
	leaderElectionNamespace string
	provider                string
	selectorLabels          []string
	labelPrefixes           []string
	annotationPrefixes      []string
	metricsServer           string
	metricErrorLimit        int
	noCrossNamespaceRefs    bool
	awsDefaultCredentials   bool
	sharedNamespaces        []string
	checkWorkers            int
	checkWorkersPerNS       int
	reconcileTimeout        time.Duration
	nginxAnnotationPrefix   string
	contourIngressClass     string
	alertType               string
	alertAddress            string
	alertChannel            string
	alertUsername           string
	alertSeverity           string
	clusterName             string
	kubeAPICompression      bool
	enablePprof             bool

	client         client.Options
	logger         logger.Options
	leaderElection leaderelection.Options
	rateLimiter    runtimectrl.RateLimiterOptions
}

func bindFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":8080", "The address the metrics endpoint binds to.")
	fs.StringVar(&o.healthAddr, "health-addr", ":9440", "The address the health endpoints (/healthz, /readyz) bind to.")
	// A reconcile mostly waits on the API server, so workers are cheap;
	// with Flux's 4, releasing many Canaries at once queued each step
	// (e2e/bench/results.md).
	fs.IntVar(&o.concurrent, "concurrent", 16, "The number of Canaries reconciled at the same time.")
	fs.StringVar(&o.watchNamespace, "watch-namespace", "", "Watch Canaries only in this namespace; empty watches all namespaces.")
	fs.StringVar(&o.watchLabelSelector, "watch-label-selector", "", "Watch only Canaries with matching labels (e.g. 'serin.dev/shard=shard1'), to shard Canaries across controllers.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", os.Getenv("RUNTIME_NAMESPACE"), "The namespace of the leader election Lease; defaults to $RUNTIME_NAMESPACE, then to the pod's namespace.")
	fs.StringVar(&o.provider, "provider", string(serinv1.ProviderKubernetes), "The traffic router of Canaries without spec.provider.")
	fs.StringSliceVar(&o.selectorLabels, "selector-labels", workload.DefaultSelectorLabels, "Selector label keys tried, in order, to tell primary pods from canary pods.")
	fs.StringSliceVar(&o.labelPrefixes, "include-label-prefix", []string{"*"}, "Prefixes of the target's labels copied to the primary; * copies all.")
	fs.StringSliceVar(&o.annotationPrefixes, "include-annotation-prefix", []string{"*"}, "Prefixes of the target's annotations copied to the primary; * copies all.")
	fs.StringVar(&o.metricsServer, "metrics-server", "http://prometheus:9090", "The Prometheus of Canaries without spec.metricsServer (built-in and inline queries).")
	fs.IntVar(&o.metricErrorLimit, "metric-error-limit", analysis.DefaultErrorLimit, "How many analysis intervals in a row a metric or webhook may go without a verdict (no data, a failed query, no answer) before that counts as one failed check; a Canary's consecutiveErrorLimit overrides it.")
	fs.BoolVar(&o.awsDefaultCredentials, "aws-default-credentials", false, "Let cloudwatch MetricTemplates without a secretRef in the --shared-namespaces query with the controller's own AWS identity (the AWS SDK's default chain: IRSA, EKS Pod Identity, instance role).")
	fs.BoolVar(&o.noCrossNamespaceRefs, "no-cross-namespace-refs", false, "Forbid Canaries to use MetricTemplates and AlertProviders of any other namespace, shared ones included.")
	fs.StringSliceVar(&o.sharedNamespaces, "shared-namespaces", defaultSharedNamespaces(), "Namespaces whose MetricTemplates and AlertProviders Canaries of every namespace may use, besides their own; defaults to the controller's namespace ($RUNTIME_NAMESPACE).")
	fs.IntVar(&o.checkWorkers, "check-workers", controller.DefaultCheckLimits.Workers, "How many Canaries' checks (webhook calls, metric queries) run at once, off the reconcile workers.")
	fs.IntVar(&o.checkWorkersPerNS, "check-workers-per-namespace", controller.DefaultCheckLimits.PerTenant, "How many of the check workers one namespace's Canaries may hold at once.")
	fs.DurationVar(&o.reconcileTimeout, "reconcile-timeout", 2*time.Minute, "The longest one reconcile may take; checks run outside of it.")
	fs.StringVar(&o.nginxAnnotationPrefix, "nginx-annotation-prefix", "nginx.ingress.kubernetes.io", "The annotation prefix of the NGINX ingress controller.")
	fs.StringVar(&o.contourIngressClass, "contour-ingress-class", "", "The ingress class set on generated HTTPProxies.")
	fs.StringVar(&o.alertType, "alert-type", "", "The type of a default alert provider that receives every Canary's release events: slack, msteams, discord, rocket, gchat, generic or cloudevents; empty sends none.")
	fs.StringVar(&o.alertAddress, "alert-address", "", "The webhook URL of the default alert provider (default $"+alertAddressEnv+", which keeps it out of the pod spec).")
	fs.StringVar(&o.alertChannel, "alert-channel", "", "The channel of the default alert provider.")
	fs.StringVar(&o.alertUsername, "alert-username", "serin", "The user name the default alert provider posts as.")
	fs.StringVar(&o.alertSeverity, "alert-severity", "info", "The lowest severity sent to the default alert provider: info, warn or error.")
	fs.StringVar(&o.clusterName, "cluster-name", "", "The cluster's name, shown in every alert.")
	fs.BoolVar(&o.enablePprof, "enable-pprof", false, "Serve the Go profiling endpoints (/debug/pprof) on the metrics address, which has no authentication.")
	fs.BoolVar(&o.kubeAPICompression, "kube-api-compression", false, "Ask the API server for gzip-compressed responses and watch streams, for a controller far from its API server.")
	o.client.BindFlags(fs)
	o.rateLimiter.BindFlags(fs)
	o.logger.BindFlags(fs)
	o.leaderElection.BindFlags(fs)
	// A second replica must never run releases at the same time as the
	// first, so leader election is on unless turned off explicitly.
	setDefault(fs, "enable-leader-election", "true")
	// A release of every Canary at once is a burst of small requests; the
	// Flux defaults (50/s, burst 300) made a large release wait on the
	// client rate limiter (e2e/bench/results.md). The apiserver's priority and
	// fairness still protects it.
	setDefault(fs, "kube-api-qps", "200")
	setDefault(fs, "kube-api-burst", "500")
}

// setDefault changes the default of a flag bound by a library.
func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	f.DefValue = value
	utilruntime.Must(f.Value.Set(value))
}

func main() {
	var opts options
	fs := flag.NewFlagSet(controllerName, flag.ExitOnError)
	bindFlags(fs, &opts)
	// Accept --kubeconfig as registered by controller-runtime.
	fs.AddGoFlagSet(goflag.CommandLine)
	utilruntime.Must(fs.Parse(os.Args[1:]))
	if opts.alertAddress == "" {
		opts.alertAddress = os.Getenv(alertAddressEnv)
	}

	logger.SetLogger(withLazyContext(logger.NewLogger(opts.logger)))

	mgrOpts, err := managerOptions(opts)
	if err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(1)
	}

	restConfig := client.GetConfigOrDie(opts.client)
	// The API server gzips watch streams and large responses for clients
	// that accept it. Next to the API server that buys no bandwidth worth
	// having and costs CPU on both ends (e2e/bench/results.md).
	restConfig.DisableCompression = !opts.kubeAPICompression
	ctx := ctrl.SetupSignalHandler()
	if err := waitForAPI(ctx, restConfig); err != nil {
		setupLog.Error(err, "the API server never served "+serinv1.GroupVersion.String())
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(restConfig, mgrOpts)
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}
	probes.SetupChecks(mgr, setupLog)

	cfg := controllerConfig(opts)
	if opts.awsDefaultCredentials {
		if cfg.AWSCredentials, err = providers.DefaultAWSCredentials(ctx); err != nil {
			setupLog.Error(err, "--aws-default-credentials")
			os.Exit(1)
		}
	}
	if err := controller.Setup(ctx, mgr, cfg); err != nil {
		setupLog.Error(err, "unable to set up the Canary controller")
		os.Exit(1)
	}

	setupLog.Info("starting manager", "version", buildinfo.Version, "commit", buildinfo.Commit, "go", buildinfo.GoVersion(),
		"leaderElection", mgrOpts.LeaderElection, "watchNamespace", opts.watchNamespace)
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
	setupLog.Info("manager stopped")
}

// waitForAPI waits, with backoff, until the API server serves Serin's
// API. A controller started during an API server outage, or before its
// CRDs are installed, waits instead of exiting: exits would become a
// CrashLoopBackOff whose delays outlast the outage.
func waitForAPI(ctx context.Context, cfg *rest.Config) error {
	probe := rest.CopyConfig(cfg)
	probe.Timeout = 10 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(probe)
	if err != nil {
		return err
	}
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}
	return wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		if _, err := dc.ServerResourcesForGroupVersion(serinv1.GroupVersion.String()); err != nil {
			setupLog.Info("waiting for the API server to serve "+serinv1.GroupVersion.String(), "error", err.Error())
			return false, nil
		}
		return true, nil
	})
}

// controllerConfig turns the flags into the Canary controller's settings.
func controllerConfig(o options) controller.Config {
	return controller.Config{
		DefaultProvider: serinv1.Provider(o.provider),
		Routers: controller.RouterOptions{
			NginxAnnotationPrefix: o.nginxAnnotationPrefix,
			ContourIngressClass:   o.contourIngressClass,
		},
		Workload: workload.Options{
			SelectorLabels:            o.selectorLabels,
			IncludeLabelPrefixes:      o.labelPrefixes,
			IncludeAnnotationPrefixes: o.annotationPrefixes,
			FieldManager:              controller.FieldManager,
		},
		Options: controller.CanaryReconcilerOptions{
			RateLimiter: runtimectrl.GetRateLimiter(o.rateLimiter),
			Checks: controller.WorkLimits{
				Workers:        o.checkWorkers,
				PerTenant:      o.checkWorkersPerNS,
				QueuePerTenant: controller.DefaultCheckLimits.QueuePerTenant,
			},
		},
		MetricsServer:    o.metricsServer,
		MetricErrorLimit: o.metricErrorLimit,
		Refs:             refpolicy.Policy{Shared: nonEmpty(o.sharedNamespaces), OwnOnly: o.noCrossNamespaceRefs},
		Alerting:         alerting(o),
	}
}

// defaultSharedNamespaces is the controller's own namespace, where a
// platform team keeps the templates and alert providers it shares.
func defaultSharedNamespaces() []string {
	if ns := os.Getenv("RUNTIME_NAMESPACE"); ns != "" {
		return []string{ns}
	}
	return nil
}

// nonEmpty drops the empty entries that --shared-namespaces="" leaves.
func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// alerting is the controller-wide alert configuration; managerOptions has
// checked the flags.
func alerting(o options) controller.Alerting {
	a := controller.Alerting{Cluster: o.clusterName, DefaultSeverity: serinv1.AlertSeverity(o.alertSeverity)}
	if o.alertType != "" {
		a.Default = &alerts.Config{Type: alerts.Type(o.alertType), Address: o.alertAddress, Channel: o.alertChannel, Username: o.alertUsername}
	}
	return a
}

// managerOptions turns the flags into controller-runtime manager options.
func managerOptions(o options) (ctrl.Options, error) {
	if !serinv1.Provider(o.provider).Valid() {
		return ctrl.Options{}, fmt.Errorf("--provider %q is not one of %s", o.provider, providerList())
	}
	switch serinv1.AlertSeverity(o.alertSeverity) {
	case "", alerts.SeverityInfo, alerts.SeverityWarn, alerts.SeverityError:
	default:
		return ctrl.Options{}, fmt.Errorf("--alert-severity %q is not one of info, warn, error", o.alertSeverity)
	}
	if o.alertType != "" {
		if _, err := alerts.New(*alerting(o).Default); err != nil {
			return ctrl.Options{}, fmt.Errorf("--alert-type/--alert-address: %w", err)
		}
	}
	if o.metricErrorLimit < 1 {
		return ctrl.Options{}, fmt.Errorf("--metric-error-limit must be at least 1, got %d", o.metricErrorLimit)
	}
	if o.checkWorkers < 0 || o.checkWorkersPerNS < 0 || o.checkWorkersPerNS > o.checkWorkers {
		return ctrl.Options{}, fmt.Errorf("--check-workers-per-namespace (%d) must be between 1 and --check-workers (%d)", o.checkWorkersPerNS, o.checkWorkers)
	}
	if o.concurrent < 1 {
		return ctrl.Options{}, fmt.Errorf("--concurrent must be at least 1, got %d", o.concurrent)
	}
	selector, err := labels.Parse(o.watchLabelSelector)
	if err != nil {
		return ctrl.Options{}, fmt.Errorf("--watch-label-selector: %w", err)
	}

	leaderElectionID := controllerName + "-leader-election"
	if o.watchLabelSelector != "" {
		// Each shard elects its own leader.
		leaderElectionID = leaderelection.GenerateID(leaderElectionID, o.watchLabelSelector)
	}

	cacheOpts := ctrlcache.Options{
		ByObject: map[ctrlclient.Object]ctrlcache.ByObject{
			&serinv1.Canary{}: {Label: selector},
		},
		// Nothing read from the cache looks at managedFields (the routers,
		// which do, read around it), and they are a large share of every
		// cached Deployment, Service and Canary.
		DefaultTransform: ctrlcache.TransformStripManagedFields(),
	}
	if o.watchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]ctrlcache.Config{o.watchNamespace: {}}
	}

	return ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Client:                        controller.ClientOptions(),
		Metrics:                       metricsServer(o),
		HealthProbeBindAddress:        o.healthAddr,
		LeaderElection:                o.leaderElection.Enable,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: o.leaderElection.ReleaseOnCancel,
		LeaseDuration:                 &o.leaderElection.LeaseDuration,
		RenewDeadline:                 &o.leaderElection.RenewDeadline,
		RetryPeriod:                   &o.leaderElection.RetryPeriod,
		Controller: ctrlconfig.Controller{
			MaxConcurrentReconciles: o.concurrent,
			RecoverPanic:            new(true),
			ReconciliationTimeout:   o.reconcileTimeout,
		},
	}, nil
}

// metricsServer serves /metrics, and the profiling endpoints only when
// asked for: profiles reveal memory contents and cost CPU, and the metrics
// address is unauthenticated.
func metricsServer(o options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.enablePprof {
		opts.ExtraHandlers = pprof.GetHandlers()
	}
	return opts
}

// providerList names the values --provider accepts.
func providerList() string {
	var names []string
	for _, p := range serinv1.Providers() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}
