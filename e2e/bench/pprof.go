package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profileChunk is the length of each CPU profile taken from the controller;
// `go tool pprof` merges the chunks of a phase.
const profileChunk = 20 * time.Second

// profiler saves the controller's CPU profile in chunks and its heap at the
// end of each phase, from the pprof handlers on its metrics address.
type profiler struct {
	base string // http://host:port
	dir  string
	http *http.Client
}

func newProfiler(metricsURL, dir string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{
		base: strings.TrimSuffix(metricsURL, "/metrics"),
		dir:  dir,
		http: &http.Client{Timeout: profileChunk + 30*time.Second},
	}, nil
}

// cpu saves CPU profiles named <phase>-NNN.pprof until ctx ends.
func (p *profiler) cpu(ctx context.Context, phase string) {
	for i := 1; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("%s-cpu-%03d.pprof", phase, i)
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.base, int(profileChunk.Seconds()))
		if err := p.save(ctx, url, name); err != nil {
			if ctx.Err() == nil {
				logf("cpu profile %s: %v", name, err)
			}
			return
		}
	}
}

// heap saves the live heap as <phase>-heap.pprof.
func (p *profiler) heap(ctx context.Context, phase string) {
	if err := p.save(ctx, p.base+"/debug/pprof/heap?gc=1", phase+"-heap.pprof"); err != nil {
		logf("heap profile: %v", err)
	}
}

func (p *profiler) save(ctx context.Context, url, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// phase profiles the controller's CPU until the returned func is called,
// which then saves its heap. A nil profiler profiles nothing.
func (p *profiler) phase(ctx context.Context, name string) func() {
	if p == nil {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.cpu(pctx, name) }()
	return func() { cancel(); <-done; p.heap(ctx, name) }
}
