package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
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
	taskTimeout = maxBlockingLoadDuration + maxRequestTimeout + time.Minute
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
// Names and namespaces are checked (a namespace has no dot), so that two
// canaries never share a key.
func (p payload) canaryKey() string { return p.Name + "." + p.Namespace }

// config is what the flags decide.
type config struct {
	// namespaces must match the whole namespace of a canary for its
	// requests to be served, whoever sends them.
	namespaces *regexp.Regexp
	auth       *authenticator
	commands   commandPolicy
	hosts      *hostPolicy
	limits     limits
	log        *slog.Logger
}

// limits bound what callers can make the tester do.
type limits struct {
	// maxCommands bounds the commands (cmd and bash) running at once.
	maxCommands int
	// maxLoads bounds the loads (blocking or not) running at once, and
	// maxTotalRate the sum of their rates.
	maxLoads     int
	maxTotalRate float64
	// maxLoadRate and maxLoadDuration bound one load.
	maxLoadRate     float64
	maxLoadDuration time.Duration
	// maxGates bounds the open gates (gates and rollbacks each), and
	// maxGatesPerNamespace those of one namespace.
	maxGates             int
	maxGatesPerNamespace int
}

func defaultLimits() limits {
	return limits{
		maxCommands:          10,
		maxLoads:             10,
		maxTotalRate:         2000,
		maxLoadRate:          maxLoadRate,
		maxLoadDuration:      time.Hour,
		maxGates:             10000,
		maxGatesPerNamespace: 1000,
	}
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
	// and loads that have not ended yet.
	running map[string]struct{}
	// commands, loads and loadRate are what runs now, against cfg.limits.
	commands, loads int
	loadRate        float64
}

func newServer(cfg config) *server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{
		cfg:       cfg,
		log:       cfg.log,
		metrics:   newMetrics(),
		gates:     newGateStore(cfg.limits.maxGates, cfg.limits.maxGatesPerNamespace),
		rollbacks: newGateStore(cfg.limits.maxGates, cfg.limits.maxGatesPerNamespace),
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

// goSafe runs fn in a goroutine that logs a panic instead of taking the
// process, and with it every other team's tasks and gates, down.
func goSafe(log *slog.Logger, what string, fn func()) {
	go func() {
		defer recoverAndLog(log, what)
		fn()
	}()
}

// goResult runs fn in a goroutine and sends its error to ch, or an error
// if it panicked, so that whoever waits on ch is never left waiting.
func goResult(log *slog.Logger, what string, ch chan<- error, fn func() error) {
	go func() {
		err := fmt.Errorf("%s panicked", what)
		defer func() { ch <- err }()
		defer recoverAndLog(log, what)
		err = fn()
	}()
}

// recoverAndLog is deferred by every goroutine the tester starts.
func recoverAndLog(log *slog.Logger, what string) {
	if r := recover(); r != nil {
		log.Error(what+" panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

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
		defer recoverAndLog(s.log, "background task")
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
	goSafe(s.log, "shutdown wait", func() {
		defer close(done)
		s.tasks.Wait()
	})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background tasks still running: %w", ctx.Err())
	}
}

// claimKey records a background task's de-duplication key; false if a
// task with the key still runs.
func (s *server) claimKey(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.running[key]; dup {
		return false
	}
	s.running[key] = struct{}{}
	return true
}

func (s *server) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, key)
}

// acquireCommand takes one of the --max-commands slots; release gives it
// back.
func (s *server) acquireCommand() (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commands >= s.cfg.limits.maxCommands {
		return nil, tooMany(fmt.Sprintf("too many commands running: %d, the limit of --max-commands; retry later", s.cfg.limits.maxCommands))
	}
	s.commands++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.commands--
	}), nil
}

// acquireLoad takes one of the --max-loads slots and rate requests per
// second of --max-total-load-rate; release gives them back.
func (s *server) acquireLoad(rate float64) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loads >= s.cfg.limits.maxLoads {
		return nil, tooMany(fmt.Sprintf("too many loads running: %d, the limit of --max-loads; retry later", s.cfg.limits.maxLoads))
	}
	if s.loadRate+rate > s.cfg.limits.maxTotalRate {
		return nil, tooMany(fmt.Sprintf("the running loads send %g requests/s; %g more would exceed --max-total-load-rate %g; retry later",
			s.loadRate, rate, s.cfg.limits.maxTotalRate))
	}
	s.loads++
	s.loadRate += rate
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.loads--
		s.loadRate -= rate
		if s.loads == 0 {
			// No float drift survives an idle tester.
			s.loadRate = 0
		}
	}), nil
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

// payloadHandler serves a request whose payload was decoded and which its
// caller may send.
type payloadHandler func(w http.ResponseWriter, r *http.Request, p payload)

// guarded wraps the endpoints that act for a caller: it bounds the handler
// in time, checks the bearer token, caps and decodes the body, and checks
// that the token may act for the payload's namespace.
func (s *server) guarded(d time.Duration, h payloadHandler) http.Handler {
	return bounded(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := s.cfg.auth.authenticate(r)
		if err != nil {
			s.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, err.Error(), errorCode(err))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		p, err := decodePayload(r.Body)
		if err == nil {
			err = s.authorize(who, p)
		}
		if err != nil {
			s.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
			http.Error(w, err.Error(), errorCode(err))
			return
		}
		h(w, r, p)
	}))
}

// authorize checks that who may act for the payload's namespace.
func (s *server) authorize(who principal, p payload) error {
	if !who.any && p.Namespace != who.namespace {
		return &httpError{http.StatusForbidden, fmt.Sprintf("the bearer token is not for namespace %q: a namespace's token from --tokens-dir only acts for canaries in that namespace", p.Namespace)}
	}
	if !s.cfg.namespaces.MatchString(p.Namespace) {
		return &httpError{http.StatusForbidden, fmt.Sprintf("namespace %q is not allowed by --namespace-regexp %q", p.Namespace, s.cfg.namespaces.String())}
	}
	return nil
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
			s.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		h.ServeHTTP(w, r)
	})
}

// canaryName is a Kubernetes object name (a DNS-1123 subdomain).
var canaryName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// decodePayload reads one webhook payload, and nothing after it, and
// checks that it names a canary.
func decodePayload(body io.Reader) (payload, error) {
	var p payload
	dec := json.NewDecoder(body)
	err := dec.Decode(&p)
	if err == nil {
		// Trailing data is refused, and read, so that a body over the
		// limit is refused as such even when it starts with a payload.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailingData
			if _, ok := errors.AsType[*http.MaxBytesError](terr); ok {
				err = terr
			}
		}
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return p, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes)}
		}
		return p, badRequest("malformed JSON payload: " + err.Error())
	}
	if p.Name == "" || p.Namespace == "" {
		return p, badRequest("payload must have a name and a namespace")
	}
	if !namespaceName.MatchString(p.Namespace) {
		return p, badRequest(fmt.Sprintf("payload namespace %q is not a namespace name", p.Namespace))
	}
	if len(p.Name) > 253 || !canaryName.MatchString(p.Name) {
		return p, badRequest(fmt.Sprintf("payload name %q is not an object name", p.Name))
	}
	return p, nil
}

var errTrailingData = errors.New("data after the payload")

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
