package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

const (
	// maxBodyBytes caps request bodies: a webhook payload is a few hundred
	// bytes, so anything near this is a mistake or abuse.
	maxBodyBytes = 1 << 20
	// quickTimeout bounds the handlers that only touch in-memory state.
	quickTimeout = 10 * time.Second
	// taskTimeout bounds POST /: the longest blocking task (a 10m load plus
	// its last requests) with some slack.
	taskTimeout = maxLoadDuration + maxRequestTimeout + time.Minute
)

// payload is the body Serin's webhooks POST. It mirrors
// pkg/checks/webhook.Payload without importing it, so that the tester does
// not pull the Kubernetes API types into its binary.
type payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// canaryKey identifies a canary the way gates and de-duplication see it.
func (p payload) canaryKey() string { return p.Name + "." + p.Namespace }

// config is what the flags decide.
type config struct {
	// namespaces must match the whole namespace of a canary for its
	// requests to be served.
	namespaces *regexp.Regexp
	// token, when not empty, is the bearer token every endpoint but
	// /healthz and /metrics requires.
	token string
	log   *slog.Logger
}

// server is the tester's HTTP handler and the owner of every task it runs.
type server struct {
	cfg       config
	log       *slog.Logger
	metrics   *metrics
	gates     *gateStore
	rollbacks *gateStore
	handler   http.Handler

	// ctx is canceled on shutdown; every task derives its context from it,
	// so that canceling it kills all command process groups and stops all
	// loads.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// closed is set on shutdown, after which no background task starts;
	// it guards tasks.Add against a concurrent tasks.Wait.
	closed bool
	tasks  sync.WaitGroup
	// running holds the de-duplication keys of the background commands
	// that have not exited yet.
	running map[string]struct{}
}

func newServer(cfg config) *server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{
		cfg:       cfg,
		log:       cfg.log,
		metrics:   newMetrics(),
		gates:     newGateStore(),
		rollbacks: newGateStore(),
		ctx:       ctx,
		cancel:    cancel,
		running:   map[string]struct{}{},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", bounded(quickTimeout, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})))
	mux.Handle("GET /metrics", bounded(quickTimeout, s.metrics.handler()))
	mux.Handle("POST /{$}", s.guarded(taskTimeout, s.handleTask))
	mux.Handle("POST /gate/open", s.guarded(quickTimeout, s.setGate(s.gates, true)))
	mux.Handle("POST /gate/close", s.guarded(quickTimeout, s.setGate(s.gates, false)))
	mux.Handle("POST /gate/check", s.guarded(quickTimeout, s.checkGate(s.gates)))
	mux.Handle("POST /gate/approve", s.guarded(quickTimeout, fixedGate(true)))
	mux.Handle("POST /gate/halt", s.guarded(quickTimeout, fixedGate(false)))
	mux.Handle("POST /rollback/open", s.guarded(quickTimeout, s.setGate(s.rollbacks, true)))
	mux.Handle("POST /rollback/close", s.guarded(quickTimeout, s.setGate(s.rollbacks, false)))
	mux.Handle("POST /rollback/check", s.guarded(quickTimeout, s.checkGate(s.rollbacks)))
	s.handler = s.recoverPanics(mux)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// startBackground runs fn in a goroutine that shutdown waits for, unless
// shutdown has begun.
func (s *server) startBackground(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		// A bug in one task must not take every other team's tasks and
		// gates down with the process.
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("background task panicked", "panic", fmt.Sprint(r))
			}
		}()
		fn()
	}()
	return true
}

// shutdown cancels every task (killing command process groups) and waits
// for the background ones to finish, or for ctx.
func (s *server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.tasks.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background tasks still running: %w", ctx.Err())
	}
}

// bounded gives a handler's context a deadline, so that nothing it starts
// outlives d.
func bounded(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// guarded wraps the endpoints that act for a caller: it bounds the handler
// in time, caps the body and checks the bearer token.
func (s *server) guarded(d time.Duration, h http.HandlerFunc) http.Handler {
	return bounded(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h(w, r)
	}))
}

func (s *server) authorized(r *http.Request) bool {
	if s.cfg.token == "" {
		return true
	}
	// The scheme is case-insensitive (RFC 9110); the token is not.
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.token)) == 1
}

// recoverPanics turns a handler panic into a 500, so that one bad request
// cannot take the tester down.
func (s *server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		h.ServeHTTP(w, r)
	})
}

// decodePayload reads the webhook payload and checks that it names a
// canary in an allowed namespace. On failure it has written the response.
func (s *server) decodePayload(w http.ResponseWriter, r *http.Request) (payload, bool) {
	var p payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes), http.StatusRequestEntityTooLarge)
			return p, false
		}
		http.Error(w, "malformed JSON payload: "+err.Error(), http.StatusBadRequest)
		return p, false
	}
	if p.Name == "" || p.Namespace == "" {
		http.Error(w, "payload must have a name and a namespace", http.StatusBadRequest)
		return p, false
	}
	if !s.cfg.namespaces.MatchString(p.Namespace) {
		http.Error(w, fmt.Sprintf("namespace %q is not allowed by --namespace-regexp %q", p.Namespace, s.cfg.namespaces.String()), http.StatusForbidden)
		return p, false
	}
	return p, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
