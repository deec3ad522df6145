//go:build !faultinject

package controller

import "github.com/serin-dev/serin/pkg/analysis"

// faultAfter is a fault-injection point; only a build with the faultinject
// tag (fault_inject.go) does anything there.
func faultAfter(analysis.ActionKind) {}

// faultAfterStored is the fault-injection point between a decision's status
// write and its Events.
func faultAfterStored([]analysis.Event) {}
