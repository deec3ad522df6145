package main

import (
	"slices"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// withLazyContext returns l with its context values (WithValues) encoded
// only when an entry is written. controller-runtime gives every reconcile a
// logger with the controller, the object and a reconcile ID, and zap
// encodes them at once, a visible share of the controller's allocations
// at scale (e2e/bench/results.md), while at the default level almost no
// reconcile writes a line.
func withLazyContext(l logr.Logger) logr.Logger {
	u, ok := l.GetSink().(zapr.Underlier)
	if !ok {
		return l
	}
	return zapr.NewLogger(u.GetUnderlying().WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return &lazyContextCore{Core: c}
	})))
}

// lazyContextCore keeps the fields of With and adds them to its core when an
// enabled entry is checked or written. The core's level is its own, so
// Enabled needs no fields.
type lazyContextCore struct {
	zapcore.Core
	fields []zapcore.Field

	once       sync.Once
	withFields zapcore.Core
}

func (c *lazyContextCore) With(fields []zapcore.Field) zapcore.Core {
	return &lazyContextCore{Core: c.Core, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *lazyContextCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.Enabled(e.Level) {
		return ce
	}
	return c.full().Check(e, ce)
}

func (c *lazyContextCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.full().Write(e, fields)
}

func (c *lazyContextCore) full() zapcore.Core {
	c.once.Do(func() {
		c.withFields = c.Core
		if len(c.fields) > 0 {
			c.withFields = c.Core.With(c.fields)
		}
	})
	return c.withFields
}
