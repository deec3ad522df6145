package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// dynatrace queries Dynatrace's Metrics API v2:
// https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points
type dynatrace struct {
	base   string
	client *client
}

// newDynatrace needs an address (https://<env>.live.dynatrace.com) and the
// dynatrace_token credential.
func newDynatrace(cfg Config) (Provider, error) {
	base, err := baseURL(cfg.Address, "")
	if err != nil {
		return nil, err
	}
	token, err := credential(cfg, "dynatrace_token")
	if err != nil {
		return nil, err
	}
	header := headerWith(cfg)
	header.Set("Authorization", "Api-Token "+token)
	return &dynatrace{base: base, client: newClient(cfg, header)}, nil
}

// Query asks for one data point over the whole window (resolution=Inf) and
// returns the last non-null value of the first series.
func (d *dynatrace) Query(ctx context.Context, query string, window time.Duration) (float64, error) {
	seconds, err := windowSeconds(window)
	if err != nil {
		return 0, err
	}
	params := url.Values{
		"metricSelector": {query},
		"from":           {fmt.Sprintf("now-%ds", seconds)},
		"resolution":     {"Inf"},
	}
	body, err := d.client.get(ctx, d.base+"/api/v2/metrics/query?"+params.Encode(), dynatraceMessage)
	if err != nil {
		return 0, err
	}
	var res struct {
		Result []struct {
			Data []struct {
				Values []*float64 `json:"values"`
			} `json:"data"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if len(res.Result) == 0 || len(res.Result[0].Data) == 0 {
		return 0, ErrNoData
	}
	return lastValue(res.Result[0].Data[0].Values, func(v *float64) *float64 { return v })
}

// dynatraceMessage reads Dynatrace's {"error": {"code": ..., "message": ...}}.
func dynatraceMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Message
}
