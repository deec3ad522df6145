package main

import (
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	. "github.com/onsi/gomega"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// countingCore counts how often context fields are encoded into it.
type countingCore struct {
	zapcore.Core
	withs *atomic.Int32
}

func (c countingCore) With(fields []zapcore.Field) zapcore.Core {
	c.withs.Add(1)
	return countingCore{Core: c.Core.With(fields), withs: c.withs}
}

func (c countingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func TestLazyContextEncodesValuesOnlyForWrittenEntries(t *testing.T) {
	g := NewWithT(t)
	observed, logs := observer.New(zapcore.InfoLevel)
	var withs atomic.Int32
	log := withLazyContext(zapr.NewLogger(zap.New(countingCore{Core: observed, withs: &withs})))

	reconcile := log.WithValues("controller", "canary").WithValues("reconcileID", "r1")
	reconcile.V(1).Info("not written at the info level")
	g.Expect(withs.Load()).To(BeZero(), "no entry written, no context encoded")
	g.Expect(logs.Len()).To(BeZero())

	reconcile.Info("reconciled", "phase", "Progressing")
	reconcile.Info("reconciled again")
	g.Expect(withs.Load()).To(Equal(int32(1)), "the context is encoded once, with the first entry")
	entries := logs.All()
	g.Expect(entries).To(HaveLen(2))
	g.Expect(entries[0].ContextMap()).To(Equal(map[string]any{"controller": "canary", "reconcileID": "r1", "phase": "Progressing"}))
	g.Expect(entries[1].ContextMap()).To(Equal(map[string]any{"controller": "canary", "reconcileID": "r1"}))

	// A sibling has only its own values.
	log.WithValues("controller", "other").Info("sibling")
	g.Expect(logs.All()[2].ContextMap()).To(Equal(map[string]any{"controller": "other"}))
}

func TestLazyContextLeavesOtherLoggersAlone(t *testing.T) {
	g := NewWithT(t)
	discard := logr.Discard()
	g.Expect(withLazyContext(discard)).To(Equal(discard))
}
