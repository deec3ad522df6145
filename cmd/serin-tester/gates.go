package main

import (
	"fmt"
	"net/http"
	"sync"
)

// gateStore remembers, per canary, whether a gate is open. Gates start
// closed, as in Flagger's load tester: a canary waits until someone opens
// its gate. Only open gates are kept, at most max of them and perNamespace
// per namespace, so that callers cannot grow the map without bound nor one
// namespace take every entry.
type gateStore struct {
	mu           sync.Mutex
	open         map[string]bool
	perNS        map[string]int
	max          int
	perNamespace int
}

func newGateStore(max, perNamespace int) *gateStore {
	return &gateStore{open: map[string]bool{}, perNS: map[string]int{}, max: max, perNamespace: perNamespace}
}

// set opens or closes the gate of p's canary; opening fails when a bound
// is reached.
func (g *gateStore) set(p payload, open bool) error {
	key := p.canaryKey()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !open {
		// Closed is the default, so forgetting the key keeps the map
		// from growing with every canary ever closed.
		if g.open[key] {
			delete(g.open, key)
			if g.perNS[p.Namespace]--; g.perNS[p.Namespace] <= 0 {
				delete(g.perNS, p.Namespace)
			}
		}
		return nil
	}
	if g.open[key] {
		return nil
	}
	if len(g.open) >= g.max {
		return tooMany(fmt.Sprintf("%d gates are open, the limit of --max-gates; close some first", g.max))
	}
	if g.perNS[p.Namespace] >= g.perNamespace {
		return tooMany(fmt.Sprintf("namespace %q has %d gates open, the limit of --max-gates-per-namespace; close some first", p.Namespace, g.perNamespace))
	}
	g.open[key] = true
	g.perNS[p.Namespace]++
	return nil
}

func (g *gateStore) isOpen(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

// setGate opens or closes the gate of the canary named by the payload.
// It answers 202 like Flagger's gate/open and gate/close.
func (s *server) setGate(g *gateStore, open bool) payloadHandler {
	return func(w http.ResponseWriter, r *http.Request, p payload) {
		if err := g.set(p, open); err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("gate changed", "path", r.URL.Path, "canary", p.canaryKey(), "open", open)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(stateText(open)))
	}
}

// checkGate answers 200 when the canary's gate is open and 403 otherwise,
// which Serin's webhooks read as pass and fail.
func (s *server) checkGate(g *gateStore) payloadHandler {
	return func(w http.ResponseWriter, _ *http.Request, p payload) {
		writeGate(w, g.isOpen(p.canaryKey()))
	}
}

// fixedGate answers as a gate that is always open or always closed, for
// canaries that should pass or wait unconditionally.
func fixedGate(open bool) payloadHandler {
	return func(w http.ResponseWriter, _ *http.Request, _ payload) { writeGate(w, open) }
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
