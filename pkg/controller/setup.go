package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	runtimectrl "github.com/fluxcd/pkg/runtime/controller"
	"github.com/fluxcd/pkg/runtime/events"
	runtimemetrics "github.com/fluxcd/pkg/runtime/metrics"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/metrics"
	"github.com/serin-dev/serin/pkg/checks/metrics/providers"
	"github.com/serin-dev/serin/pkg/checks/webhook"
	"github.com/serin-dev/serin/pkg/flagrelease"
	"github.com/serin-dev/serin/pkg/refpolicy"
	"github.com/serin-dev/serin/pkg/service"
	"github.com/serin-dev/serin/pkg/versions"
	"github.com/serin-dev/serin/pkg/workload"
)

// Config is what cmd/serin passes to Setup.
type Config struct {
	// Alerting sends release events to alert providers.
	Alerting Alerting
	// DefaultProvider is used by Canaries without spec.provider.
	DefaultProvider serinv1.Provider
	// Routers tunes the routers.
	Routers RouterOptions
	// Workload tunes how primaries are copied from targets.
	Workload workload.Options
	// Options tunes the controller (rate limiter).
	Options CanaryReconcilerOptions
	// MetricsServer is the Prometheus of Canaries without metricsServer.
	MetricsServer string
	// MetricErrorLimit is how many intervals in a row a check may go
	// without a verdict before that counts as a failed check, unless the
	// Canary sets consecutiveErrorLimit.
	MetricErrorLimit int
	// Refs says which namespaces a Canary may take MetricTemplates and
	// AlertProviders from.
	Refs refpolicy.Policy
	// AWSCredentials, when set, is the controller's own AWS identity, lent
	// to cloudwatch MetricTemplates of the shared namespaces that have no
	// secretRef.
	AWSCredentials aws.CredentialsProvider
}

// ClientOptions keeps ConfigMaps and Secrets out of the informer cache:
// Serin reads only the few a target references, and caching every Secret of
// the cluster would cost memory and widen what the process holds.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}}}}
}

// metricsRecorder registers the reconcile metrics once per process, however
// many managers a process runs (tests run several).
var metricsRecorder = sync.OnceValue(runtimemetrics.MustMakeRecorder)

// Setup builds the Canary reconciler with its collaborators and registers it
// with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	recorder, err := events.NewRecorder(ctrl.Log.WithName("events"), "", FieldManager, events.WithManager(mgr))
	if err != nil {
		return fmt.Errorf("creating the event recorder: %w", err)
	}
	kube := mgr.GetClient()
	writes := versions.New(mgr.GetScheme())
	writer := ownWritesClient{Client: kube, writes: writes}
	r := &CanaryReconciler{
		Client:        kube,
		APIReader:     mgr.GetAPIReader(),
		EventRecorder: recorder,
		Metrics:       runtimectrl.NewMetrics(mgr, metricsRecorder(), serinv1.CanaryFinalizer),
		Workloads:     workload.New(kube, writer, withHistoryReader(cfg.Workload, mgr.GetAPIReader())),
		Flags:         &flagrelease.Releaser{Reader: kube, Client: writer, History: mgr.GetAPIReader()},
		Services:      &service.Applier{Reader: kube, Client: writer, FieldManager: FieldManager, Versions: writes},
		versions:      versions.New(mgr.GetScheme()),
		writes:        writes,
		Webhooks:      webhook.NewClient(),
		MetricChecks: &metrics.Checker{
			Reader:         kube,
			DefaultAddress: cfg.MetricsServer,
			Refs:           cfg.Refs,
			AWS:            cfg.AWSCredentials,
			NewProvider:    providers.New,
		},
		DefaultProvider: cfg.DefaultProvider,
		ErrorLimit:      cfg.MetricErrorLimit,
		Alerting:        cfg.Alerting,
		Routers:         cfg.Routers,
		Refs:            cfg.Refs,
		Now:             time.Now,
	}
	return r.SetupWithManager(ctx, mgr, cfg.Options)
}

// withHistoryReader reads the kept revisions around the cache: they are read
// only at a promotion or a restore, too rarely to watch every
// ControllerRevision in the cluster.
func withHistoryReader(opts workload.Options, reader client.Reader) workload.Options {
	opts.HistoryReader = reader
	return opts
}
