package main

import (
	"net/http"
	"sync"
)

// gateStore remembers, per canary, whether a gate is open. Gates start
// closed, as in Flagger's load tester: a canary waits until someone opens
// its gate.
type gateStore struct {
	mu   sync.Mutex
	open map[string]bool
}

func newGateStore() *gateStore { return &gateStore{open: map[string]bool{}} }

func (g *gateStore) set(key string, open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		g.open[key] = true
	} else {
		// Closed is the default, so forgetting the key keeps the map
		// from growing with every canary ever closed.
		delete(g.open, key)
	}
}

func (g *gateStore) isOpen(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

// setGate opens or closes the gate of the canary named by the payload.
// It answers 202 like Flagger's gate/open and gate/close.
func (s *server) setGate(g *gateStore, open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.decodePayload(w, r)
		if !ok {
			return
		}
		g.set(p.canaryKey(), open)
		s.log.Info("gate changed", "path", r.URL.Path, "canary", p.canaryKey(), "open", open)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(stateText(open)))
	}
}

// checkGate answers 200 when the canary's gate is open and 403 otherwise,
// which Serin's webhooks read as pass and fail.
func (s *server) checkGate(g *gateStore) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.decodePayload(w, r)
		if !ok {
			return
		}
		writeGate(w, g.isOpen(p.canaryKey()))
	}
}

// fixedGate answers as a gate that is always open or always closed, for
// canaries that should pass or wait unconditionally.
func fixedGate(open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeGate(w, open) }
}

func writeGate(w http.ResponseWriter, open bool) {
	code := http.StatusForbidden
	if open {
		code = http.StatusOK
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(stateText(open)))
}

func stateText(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}
