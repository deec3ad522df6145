package stack

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// RestartTester stops serin-tester (SIGKILL, as a crashed pod would be),
// leaves it down for down, and starts it again on the same address with
// the same tokens directory. Its gates, kept in memory, are all closed
// again. It returns once the new process answers /healthz.
func (s *Stack) RestartTester(ctx context.Context, down time.Duration) error {
	addr := strings.TrimPrefix(s.TesterURL, "http://")
	if s.tester != nil && !s.tester.Exited() {
		_ = syscall.Kill(-s.tester.PID(), syscall.SIGKILL)
		<-s.tester.Done()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	p, err := proc.Start("serin-tester", filepath.Join(s.Dir, "serin-tester"), filepath.Join(s.Dir, "serin-tester.log"),
		"--listen-address="+addr, "--tokens-dir="+s.testerTokens, "--load-allow-host=127.0.0.0/8")
	if err != nil {
		return err
	}
	s.tester = p
	if err := p.WaitHTTP(ctx, s.TesterURL+"/healthz"); err != nil {
		return fmt.Errorf("restarting serin-tester: %w", err)
	}
	return nil
}
