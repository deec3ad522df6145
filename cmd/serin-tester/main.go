// Command serin-tester is the service that Serin's analysis webhooks call to
// drive smoke tests, like Flagger's load tester: it runs shell commands,
// generates HTTP load and keeps manual gates, per canary.
//
// Every POST takes a webhook payload and answers 2xx for pass:
//
//	/                   run the task in metadata.type: cmd (background sh -c,
//	                    202), bash (blocking bash -c) or load (HTTP load)
//	/gate/open|close    open or close the canary's gate (202)
//	/gate/check         200 if the canary's gate is open, else 403
//	/gate/approve|halt  always 200, always 403
//	/rollback/open|close|check  the same for a rollback request
//
// GET /healthz and GET /metrics need no token; every POST needs a bearer
// token, unless --insecure-no-auth. A token from --tokens-dir (a mounted
// Secret: one file per namespace, holding its token) only acts for
// payloads of its namespace; the operator token (--bearer-token or
// $SERIN_TESTER_TOKEN) acts for any namespace --namespace-regexp allows.
// The tokens directory is re-read at most every 10s, and at most once a
// second when a token matches none. cmd and bash run only with
// --enable-commands (and --command-allow-prefix restricts them); loads
// never reach loopback, link-local or the API server unless an IP or CIDR
// --load-allow-host pattern covers them. Every --max-* limit refuses with
// a 4xx that names it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// tokenEnv holds the bearer token, the safer alternative to --bearer-token,
// which any user of the node can read from the process list.
const tokenEnv = "SERIN_TESTER_TOKEN"

// shutdownGrace bounds SIGTERM handling, well under Kubernetes' default
// 30s grace period.
const shutdownGrace = 5 * time.Second

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "serin-tester:", err)
		os.Exit(1)
	}
}

// listFlag is a flag that may be repeated and takes comma-separated
// values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// parseFlags reads the flags into the server's configuration and the
// address to listen on.
func parseFlags(args []string, logOut io.Writer) (config, string, error) {
	fs := flag.NewFlagSet("serin-tester", flag.ContinueOnError)
	fs.SetOutput(logOut)
	def := defaultLimits()
	var (
		addr          = fs.String("listen-address", ":8080", "address to serve HTTP on")
		nsExpr        = fs.String("namespace-regexp", ".*", "regular expression that the whole namespace of a canary must match for its requests to be served, whatever the token")
		token         = fs.String("bearer-token", "", "operator bearer token, valid for every namespace --namespace-regexp allows (default $"+tokenEnv+", which the process list does not show)")
		tokensDir     = fs.String("tokens-dir", "", "directory of per-namespace tokens, such as a mounted Secret: each file is named after a namespace and holds the token valid for that namespace only; re-read at most every 10s")
		insecure      = fs.Bool("insecure-no-auth", false, "accept every request without a token, for any namespace: for local use only")
		enableCmds    = fs.Bool("enable-commands", false, "run the cmd and bash tasks (shell commands); off by default")
		cmdPrefixes   listFlag
		hostPatterns  listFlag
		maxCommands   = fs.Int("max-commands", def.maxCommands, "commands (cmd and bash) running at once")
		maxLoads      = fs.Int("max-loads", def.maxLoads, "loads running at once")
		maxTotalRate  = fs.Float64("max-total-load-rate", def.maxTotalRate, "requests per second of all running loads together")
		maxRate       = fs.Float64("max-load-rate", def.maxLoadRate, "requests per second of one load")
		maxDuration   = fs.Duration("max-load-duration", def.maxLoadDuration, "duration of one background load (a blocking load: at most "+maxBlockingLoadDuration.String()+")")
		maxGates      = fs.Int("max-gates", def.maxGates, "open gates, and open rollback gates, kept at once")
		maxGatesPerNS = fs.Int("max-gates-per-namespace", def.maxGatesPerNamespace, "open gates, and open rollback gates, of one namespace")
		level         = fs.String("log-level", "info", "log level: debug, info, warn or error")
	)
	fs.Var(&cmdPrefixes, "command-allow-prefix", "with --enable-commands, only run commands that start with one of these prefixes (whole words) and have no shell metacharacters; repeatable or comma-separated")
	fs.Var(&hostPatterns, "load-allow-host", "only send loads to hosts matching one of these patterns: host name, *.domain, IP address or CIDR prefix; loopback, link-local and the API server are refused unless an IP or CIDR pattern covers them; repeatable or comma-separated")
	if err := fs.Parse(args); err != nil {
		return config{}, "", err
	}
	if fs.NArg() > 0 {
		return config{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return config{}, "", fmt.Errorf("--log-level: %w", err)
	}
	namespaces, err := regexp.Compile(`^(?:` + *nsExpr + `)$`)
	if err != nil {
		return config{}, "", fmt.Errorf("--namespace-regexp: %w", err)
	}
	if *token == "" {
		*token = strings.TrimSpace(os.Getenv(tokenEnv))
	}
	if *insecure && (*token != "" || *tokensDir != "") {
		return config{}, "", errors.New("--insecure-no-auth cannot be combined with --bearer-token, $" + tokenEnv + " or --tokens-dir")
	}
	if len(cmdPrefixes) > 0 && !*enableCmds {
		return config{}, "", errors.New("--command-allow-prefix needs --enable-commands")
	}
	lim := limits{
		maxCommands: *maxCommands, maxLoads: *maxLoads, maxTotalRate: *maxTotalRate,
		maxLoadRate: *maxRate, maxLoadDuration: *maxDuration,
		maxGates: *maxGates, maxGatesPerNamespace: *maxGatesPerNS,
	}
	for name, v := range map[string]int{"--max-commands": lim.maxCommands, "--max-loads": lim.maxLoads, "--max-gates": lim.maxGates, "--max-gates-per-namespace": lim.maxGatesPerNamespace} {
		if v < 1 {
			return config{}, "", fmt.Errorf("%s must be at least 1", name)
		}
	}
	if !(lim.maxLoadRate >= minLoadRate && lim.maxLoadRate <= maxLoadRateFlag) {
		return config{}, "", fmt.Errorf("--max-load-rate must be in [%g, %g]", float64(minLoadRate), float64(maxLoadRateFlag))
	}
	if !(lim.maxTotalRate >= minLoadRate) || math.IsInf(lim.maxTotalRate, 0) {
		return config{}, "", fmt.Errorf("--max-total-load-rate must be at least %g", float64(minLoadRate))
	}
	if lim.maxLoadDuration <= 0 {
		return config{}, "", errors.New("--max-load-duration must be positive")
	}
	hosts, err := newHostPolicy(hostPatterns)
	if err != nil {
		return config{}, "", err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: lvl}))
	auth, err := newAuthenticator(*insecure, *token, *tokensDir, log)
	if err != nil {
		return config{}, "", err
	}
	return config{
		namespaces: namespaces,
		auth:       auth,
		commands:   commandPolicy{enabled: *enableCmds, prefixes: cmdPrefixes},
		hosts:      hosts,
		limits:     lim,
		log:        log,
	}, *addr, nil
}

func run(args []string, logOut io.Writer) error {
	cfg, addr, err := parseFlags(args, logOut)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := cfg.log
	s := newServer(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The first line says where the tester listens and what it accepts;
	// it is an error when it accepts nothing, a warning when it accepts
	// anyone.
	authLevel, authMode := cfg.auth.mode()
	log.Log(context.Background(), authLevel, "listening", "address", ln.Addr().String(), "auth", authMode,
		"namespaceRegexp", cfg.namespaces.String(), "commands", cfg.commands.describe(), "loadHosts", cfg.hosts.describe())
	if cfg.commands.enabled && len(cfg.commands.prefixes) == 0 {
		log.Warn("--enable-commands without --command-allow-prefix: any caller with a token runs any shell command as the tester")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	serveErr := make(chan error, 1)
	goResult(log, "HTTP server", serveErr, func() error { return srv.Serve(ln) })
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Tasks go first: blocking ones end their requests, which lets the
	// HTTP server's shutdown finish.
	tasksErr := make(chan error, 1)
	goResult(log, "shutdown", tasksErr, func() error { return s.shutdown(shutdownCtx) })
	err = errors.Join(srv.Shutdown(shutdownCtx), <-tasksErr)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
