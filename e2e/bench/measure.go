package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AuditCounts are the requests of one user in a kube-apiserver audit log.
type AuditCounts struct {
	// Total counts requests once each, by audit ID: when they complete,
	// or for watches when they start, as a watch completes only when it
	// ends.
	Total int
	// BeforeSplit counts those received before the split time.
	BeforeSplit int
	// ByType counts by verb and resource, e.g. "patch canaries.serin.dev/status".
	ByType map[string]int
	// Refused counts the requests answered with an error status (a
	// conflict, a throttle), by verb, resource and code.
	Refused map[string]int
	// Times are when the requests were received, in order.
	Times []time.Time
	// ByUser counts every user's requests, for comparison.
	ByUser map[string]int
}

// auditEvent holds the fields of an audit.k8s.io/v1 Event that are counted.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		APIGroup    string `json:"apiGroup"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// CountAudit reads a JSON-lines audit log and counts user's requests,
// splitting them at split.
func CountAudit(r io.Reader, user string, split time.Time) (AuditCounts, error) {
	c := AuditCounts{ByType: map[string]int{}, ByUser: map[string]int{}, Refused: map[string]int{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return c, fmt.Errorf("audit log: %w", err)
		}
		// ResponseStarted is logged only for long-running requests.
		if ev.Stage != "ResponseComplete" && ev.Stage != "ResponseStarted" || seen[ev.AuditID] {
			continue
		}
		seen[ev.AuditID] = true
		c.ByUser[ev.User.Username]++
		if ev.User.Username != user {
			continue
		}
		c.Total++
		if ev.RequestReceivedTimestamp.Before(split) {
			c.BeforeSplit++
		}
		c.ByType[requestType(&ev)]++
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 300 {
			c.Refused[fmt.Sprintf("%s %d", requestType(&ev), ev.ResponseStatus.Code)]++
		}
		c.Times = append(c.Times, ev.RequestReceivedTimestamp)
	}
	// Events are written as requests complete, not as they arrive.
	slices.SortFunc(c.Times, time.Time.Compare)
	return c, sc.Err()
}

// requestType names what a request did: verb and resource.group, with the
// subresource; non-resource requests (discovery) by their path.
func requestType(ev *auditEvent) string {
	if ev.ObjectRef == nil {
		path, _, _ := strings.Cut(ev.RequestURI, "?")
		return ev.Verb + " " + path
	}
	res := ev.ObjectRef.Resource
	if ev.ObjectRef.APIGroup != "" {
		res += "." + ev.ObjectRef.APIGroup
	}
	if ev.ObjectRef.Subresource != "" {
		res += "/" + ev.ObjectRef.Subresource
	}
	return ev.Verb + " " + res
}

// Count is one entry of a ranking.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Top returns the n largest counts, largest first, ties by name.
func Top(m map[string]int, n int) []Count {
	all := make([]Count, 0, len(m))
	for k, v := range m {
		all = append(all, Count{k, v})
	}
	slices.SortFunc(all, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return all[:min(n, len(all))]
}

// userHZ converts /proc clock ticks to seconds: the kernel reports them in
// USER_HZ, which is 100 on every Linux architecture Go supports.
const userHZ = 100

// ParseStatCPU returns utime+stime in seconds from the text of
// /proc/PID/stat.
func ParseStatCPU(stat string) (float64, error) {
	// The command name is in parentheses and may hold spaces or
	// parentheses itself, so fields are counted from the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	// After ')': state is field 3, utime field 14, stime field 15.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	return float64(utime+stime) / userHZ, nil
}

// ParseStatusKB returns the value, in kB, of a field such as VmHWM in the
// text of /proc/PID/status (or of MemTotal in /proc/meminfo).
func ParseStatusKB(status, field string) (int64, error) {
	for line := range strings.Lines(status) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s field", field)
}

// ProcUsage is a process's CPU time and peak resident memory so far.
type ProcUsage struct {
	CPUSeconds float64
	PeakRSSKB  int64
}

func readProcUsage(pid int) (ProcUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcUsage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcUsage{}, err
	}
	cpu, err := ParseStatCPU(string(stat))
	if err != nil {
		return ProcUsage{}, err
	}
	hwm, err := ParseStatusKB(string(status), "VmHWM")
	return ProcUsage{CPUSeconds: cpu, PeakRSSKB: hwm}, err
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of values,
// or 0 for none.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(values))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// throttleLine matches client-go's message for a request held back by its
// client-side rate limiter (k8s.io/client-go/rest/request.go, "Waited
// before sending request"; older releases said "Waited for ... due to
// client-side throttling").
var throttleLine = regexp.MustCompile(`Waited before sending request|Waited for .* client-side throttling`)

// CountThrottleLines counts the client-side throttling messages in a log.
func CountThrottleLines(r io.Reader) (int, error) {
	n := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if throttleLine.Match(sc.Bytes()) {
			n++
		}
	}
	return n, sc.Err()
}

// PeakPerSecond is the most requests in any one second from the first,
// given their sorted times.
func PeakPerSecond(times []time.Time) int {
	peak, n := 0, 0
	var second int64
	for _, t := range times {
		if s := t.Unix(); s != second {
			second, n = s, 0
		}
		n++
		peak = max(peak, n)
	}
	return peak
}

// EstimateThrottled replays sorted request times through a token bucket
// like client-go's (qps, burst) and counts the requests sent with less than
// two tokens left: those that had waited for a token (a waiting request is
// sent the moment one arrives) or came within one request of waiting. The
// audit log's times are when the API server received the requests, so this
// is an estimate; client-go logs only waits over a second.
func EstimateThrottled(times []time.Time, qps float64, burst int) int {
	tokens := float64(burst)
	n := 0
	for i, t := range times {
		if i > 0 {
			tokens = min(float64(burst), tokens+t.Sub(times[i-1]).Seconds()*qps)
		}
		if tokens < 2 {
			n++
		}
		// A real limiter never lends tokens; arrival jitter would.
		tokens = max(tokens-1, 0)
	}
	return n
}
