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
// GET /healthz and GET /metrics need no token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
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

func run(args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("serin-tester", flag.ContinueOnError)
	addr := fs.String("listen-address", ":8080", "address to serve HTTP on")
	nsExpr := fs.String("namespace-regexp", ".*", "regular expression that the whole namespace of a canary must match for its requests to be served")
	token := fs.String("bearer-token", "", "bearer token required on every endpoint but /healthz and /metrics (default $"+tokenEnv+")")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	namespaces, err := regexp.Compile(`^(?:` + *nsExpr + `)$`)
	if err != nil {
		return fmt.Errorf("--namespace-regexp: %w", err)
	}
	if *token == "" {
		*token = os.Getenv(tokenEnv)
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: lvl}))

	s := newServer(config{namespaces: namespaces, token: *token, log: log})
	ln, err := net.Listen("tcp", *addr)
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
	log.Info("listening", "address", ln.Addr().String(), "auth", *token != "", "namespaceRegexp", namespaces.String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
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
	go func() { tasksErr <- s.shutdown(shutdownCtx) }()
	err = errors.Join(srv.Shutdown(shutdownCtx), <-tasksErr)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
