package providers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueriesReuseConnections runs 300 checks the way the metrics checker
// does, a New per query, against one Prometheus: they must share a handful
// of connections, not open one each (which left 300 idle connections and
// their goroutines behind).
func TestQueriesReuseConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1.5"]}}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	const checks = 300
	for i := range checks {
		p, err := New(Config{Type: "prometheus", Address: srv.URL})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if v, err := p.Query(context.Background(), "vector(1.5)", time.Minute); err != nil || v != 1.5 {
			t.Fatalf("query %d = %v, %v; want 1.5", i, v, err)
		}
	}
	n := conns.Load()
	t.Logf("%d checks opened %d connections", checks, n)
	if n > 2 {
		t.Errorf("%d checks opened %d connections, want them to share one or two", checks, n)
	}
}
