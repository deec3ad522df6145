package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Task types, the values of metadata.type.
const (
	typeCmd  = "cmd"
	typeBash = "bash"
	typeLoad = "load"
	// typeUnknown labels refused requests whose type is not ours, so that
	// callers cannot grow the metrics' cardinality.
	typeUnknown = "unknown"
)

// httpError is a refused request: its status code and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// badRequest is a payload or metadata problem, answered with 400.
func badRequest(msg string) error { return &httpError{http.StatusBadRequest, msg} }

// forbidden is a task the tester's flags do not allow, answered with 403.
func forbidden(msg string) error { return &httpError{http.StatusForbidden, msg} }

// tooMany is a limit on what runs at once, answered with 429.
func tooMany(msg string) error { return &httpError{http.StatusTooManyRequests, msg} }

// errorCode is the status code to answer err with.
func errorCode(err error) int {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he.code
	}
	if ae, ok := errors.AsType[*authError](err); ok {
		return ae.code
	}
	return http.StatusInternalServerError
}

// writeError answers err, with Retry-After for a limit.
func writeError(w http.ResponseWriter, err error) {
	code := errorCode(err)
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "10")
	}
	http.Error(w, err.Error(), code)
}

// outcomeOf is the metrics outcome of a refused task.
func outcomeOf(err error) string {
	if errorCode(err) == http.StatusBadRequest {
		return outcomeInvalid
	}
	return outcomeRefused
}

// handleTask runs the task that the payload's metadata describes.
func (s *server) handleTask(w http.ResponseWriter, r *http.Request, p payload) {
	md := p.Metadata
	taskType := md["type"]
	if taskType == "" && md["cmd"] != "" {
		// Flagger's load tester defaults to cmd, so its hooks carry no type.
		taskType = typeCmd
	}
	var err error
	switch taskType {
	case typeCmd:
		err = s.runBackgroundCmd(w, p)
	case typeBash:
		err = s.runBash(w, r, p)
	case typeLoad:
		err = s.runLoadTask(w, r, p)
	case "":
		taskType = typeUnknown
		err = badRequest(`metadata.type is required (one of cmd, bash, load), or metadata.cmd for a background command`)
	default:
		err = badRequest(fmt.Sprintf("unsupported metadata.type %q (supported: cmd, bash, load)", taskType))
		taskType = typeUnknown
	}
	if err != nil {
		s.metrics.task(taskType, outcomeOf(err))
		writeError(w, err)
	}
}

// durationValue reads the Go duration under key, def when it is absent. It
// must be positive and at most upper.
func durationValue(md map[string]string, key string, def, upper time.Duration) (time.Duration, error) {
	v, ok := md[key]
	if !ok || v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("metadata.%s: %q is not a Go duration (like 30s or 5m)", key, v))
	}
	if d <= 0 || d > upper {
		return 0, badRequest(fmt.Sprintf("metadata.%s: %s is out of range (0, %s]", key, d, upper))
	}
	return d, nil
}

// boolValue reads a "true"/"false" value under key; absent means false.
func boolValue(md map[string]string, key string) (bool, error) {
	switch md[key] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, badRequest(fmt.Sprintf(`metadata.%s: %q is neither "true" nor "false"`, key, md[key]))
	}
}
