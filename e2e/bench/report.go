package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Result is the report of one run. Times are in seconds.
type Result struct {
	Profile             string             `json:"profile"`
	Canaries            int                `json:"canaries"`
	ControllerBinary    string             `json:"controllerBinary"`
	Machine             Machine            `json:"machine"`
	ClusterStartSeconds float64            `json:"clusterStartSeconds"`
	Setup               Setup              `json:"setup"`
	Init                Latencies          `json:"init"`
	Promotion           Latencies          `json:"promotion"`
	Controller          ControllerUsage    `json:"controller"`
	Requests            Requests           `json:"requests"`
	Reconciles          map[string]float64 `json:"reconcilesByResult"`
	ComponentCPUSeconds map[string]float64 `json:"clusterComponentCPUSeconds"`
	Logs                map[string]string  `json:"logs,omitempty"`
}

type Machine struct {
	CPUs              int    `json:"cpus"`
	CPUModel          string `json:"cpuModel"`
	MemTotalMiB       int64  `json:"memTotalMiB"`
	GoVersion         string `json:"goVersion"`
	KubernetesVersion string `json:"kubernetesVersion"`
	LoadAvgAtStart    string `json:"loadAvgAtStart"`
}

// Setup is how long the benchmark's own writes took.
type Setup struct {
	CreateSeconds  float64 `json:"createSeconds"`
	ReleaseSeconds float64 `json:"releaseSeconds"`
}

// Latencies are per-Canary wall times: for init from its creation to
// Initialized, for promotion from its image update to Succeeded, as the
// watch saw them. AllSeconds runs from the first write to the last Canary.
type Latencies struct {
	AllSeconds   float64 `json:"allSeconds"`
	P50          float64 `json:"p50"`
	P95          float64 `json:"p95"`
	Max          float64 `json:"max"`
	FloorSeconds float64 `json:"floorSeconds,omitempty"`
	Done         int     `json:"done"`
	Failed       int     `json:"failed"`
	// PhaseP50 is, for a promotion, the median time from the image
	// update to first seeing each phase.
	PhaseP50 map[string]float64 `json:"phaseP50,omitempty"`
}

func summarize(lat []float64, all, floor float64) Latencies {
	return Latencies{
		AllSeconds:   all,
		P50:          Percentile(lat, 50),
		P95:          Percentile(lat, 95),
		Max:          Percentile(lat, 100),
		FloorSeconds: floor,
		Done:         len(lat),
	}
}

type ControllerUsage struct {
	CPUSeconds Phases    `json:"cpuSeconds"`
	PeakRSSMiB PhasesMiB `json:"peakRSSMiB"`
	// ThrottleLogLines counts client-go's client-side throttling
	// messages. At the default log level client-go logs only waits over
	// 1s, at most one every 10s, so this is a floor; Requests'
	// EstimatedThrottled shows the extent.
	ThrottleLogLines int `json:"throttleLogLines"`
}

type Phases struct {
	Init      float64 `json:"init"`
	Promotion float64 `json:"promotion"`
	Total     float64 `json:"total"`
}

// PhasesMiB are high-water marks: at the end of init, and overall.
type PhasesMiB struct {
	Init  float64 `json:"init"`
	Total float64 `json:"total"`
}

// Requests are the controller's API requests, from the audit log.
type Requests struct {
	Total     int     `json:"total"`
	PerCanary float64 `json:"perCanary"`
	Init      int     `json:"init"`
	Promotion int     `json:"promotion"`
	// PromotionPerCanary is the promotion's requests per Canary: the cost
	// of one release.
	PromotionPerCanary float64 `json:"promotionPerCanary"`
	PeakPerSecond      int     `json:"peakPerSecond"`
	// EstimatedThrottled estimates how many requests the controller's
	// client-side rate limiter held back, at its default QPS and burst
	// (see EstimateThrottled).
	EstimatedThrottled int     `json:"estimatedThrottled"`
	TopTypes           []Count `json:"topTypes"`
	// Refused are the requests answered with an error status, by type and
	// code (conflicts cost a request and a retry).
	Refused []Count `json:"refused,omitempty"`
	// ControllerShare is the controller's share of all requests the API
	// server completed in the run.
	ControllerShare float64 `json:"controllerShare"`
	ByUser          []Count `json:"byUser"`
}

func requestsReport(a AuditCounts, n int) Requests {
	all := 0
	for _, v := range a.ByUser {
		all += v
	}
	return Requests{
		Total:              a.Total,
		PerCanary:          float64(a.Total) / float64(n),
		Init:               a.BeforeSplit,
		Promotion:          a.Total - a.BeforeSplit,
		PromotionPerCanary: float64(a.Total-a.BeforeSplit) / float64(n),
		PeakPerSecond:      PeakPerSecond(a.Times),
		EstimatedThrottled: EstimateThrottled(a.Times, defaultQPS, defaultBurst),
		TopTypes:           Top(a.ByType, 20),
		Refused:            Top(a.Refused, 10),
		ControllerShare:    float64(a.Total) / float64(all),
		ByUser:             Top(a.ByUser, 10),
	}
}

// Ratios divides every number of second by the same number of first,
// by JSON path (e.g. "promotion.p95"); lists, zeros and the machine's
// description are left out.
func Ratios(first, second *Result) map[string]float64 {
	a, b := flatten(first), flatten(second)
	out := map[string]float64{}
	for k, va := range a {
		if vb, ok := b[k]; ok && va != 0 && !strings.HasPrefix(k, "machine.") {
			out[k] = vb / va
		}
	}
	return out
}

func flatten(r *Result) map[string]float64 {
	data, err := json.Marshal(r)
	if err != nil {
		panic(err) // Result holds only marshalable values
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		panic(err)
	}
	out := map[string]float64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case float64:
			out[prefix] = v
		case map[string]any:
			for k, e := range v {
				walk(strings.TrimPrefix(prefix+"."+k, "."), e)
			}
		}
	}
	walk("", doc)
	return out
}

func printSummary(r *Result) {
	w := os.Stderr
	sec := func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
	}
	fmt.Fprintf(w, "\n== %s, %d Canaries (%d CPUs, load %s)\n", r.Profile, r.Canaries, r.Machine.CPUs, r.Machine.LoadAvgAtStart)
	fmt.Fprintf(w, "init:      all in %s; per Canary p50 %s p95 %s max %s; %d failed\n",
		sec(r.Init.AllSeconds), sec(r.Init.P50), sec(r.Init.P95), sec(r.Init.Max), r.Init.Failed)
	fmt.Fprintf(w, "promotion: all in %s; per Canary p50 %s p95 %s max %s (floor %s); %d failed\n",
		sec(r.Promotion.AllSeconds), sec(r.Promotion.P50), sec(r.Promotion.P95), sec(r.Promotion.Max), sec(r.Promotion.FloorSeconds), r.Promotion.Failed)
	for _, p := range slices.SortedFunc(maps.Keys(r.Promotion.PhaseP50), func(a, b string) int {
		return cmp.Compare(r.Promotion.PhaseP50[a], r.Promotion.PhaseP50[b])
	}) {
		fmt.Fprintf(w, "  p50 %6s  %s\n", sec(r.Promotion.PhaseP50[p]), p)
	}
	c := r.Controller
	fmt.Fprintf(w, "controller: CPU %.1fs (init %.1fs, promotion %.1fs), peak RSS %.0f MiB, %d throttling log lines\n",
		c.CPUSeconds.Total, c.CPUSeconds.Init, c.CPUSeconds.Promotion, c.PeakRSSMiB.Total, c.ThrottleLogLines)
	q := r.Requests
	fmt.Fprintf(w, "requests:  %d (%.1f per Canary; init %d, promotion %d = %.1f per Canary), peak %d/s, ~%d throttled, %.0f%% of the cluster's\n",
		q.Total, q.PerCanary, q.Init, q.Promotion, q.PromotionPerCanary, q.PeakPerSecond, q.EstimatedThrottled, 100*q.ControllerShare)
	for _, t := range q.TopTypes {
		fmt.Fprintf(w, "  %7d  %s\n", t.Count, t.Name)
	}
	for _, t := range q.Refused {
		fmt.Fprintf(w, "  %7d  %s (refused)\n", t.Count, t.Name)
	}
}

func printRatios(ratios map[string]float64) {
	fmt.Fprintln(os.Stderr, "\n== second / first")
	for _, k := range slices.Sorted(maps.Keys(ratios)) {
		fmt.Fprintf(os.Stderr, "  %-55s %.2f\n", k, ratios[k])
	}
}
