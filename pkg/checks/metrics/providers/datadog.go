package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// datadog queries timeseries points with Datadog's v1 metrics API:
// https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points
type datadog struct {
	base   string
	client *client
}

// newDatadog needs the datadog_api_key and datadog_application_key
// credentials; the address defaults to Datadog's US1 site.
func newDatadog(cfg Config) (Provider, error) {
	base, err := baseURL(cfg.Address, "https://api.datadoghq.com")
	if err != nil {
		return nil, err
	}
	apiKey, err := credential(cfg, "datadog_api_key")
	if err != nil {
		return nil, err
	}
	appKey, err := credential(cfg, "datadog_application_key")
	if err != nil {
		return nil, err
	}
	header := headerWith(cfg)
	header.Set("DD-API-KEY", apiKey)
	header.Set("DD-APPLICATION-KEY", appKey)
	return &datadog{base: base, client: newClient(cfg, header)}, nil
}

// Query returns the last non-null point of the first series.
func (d *datadog) Query(ctx context.Context, query string, window time.Duration) (float64, error) {
	seconds, err := windowSeconds(window)
	if err != nil {
		return 0, err
	}
	to := time.Now().Unix()
	params := url.Values{
		"from":  {strconv.FormatInt(to-seconds, 10)},
		"to":    {strconv.FormatInt(to, 10)},
		"query": {query},
	}
	body, err := d.client.get(ctx, d.base+"/api/v1/query?"+params.Encode(), datadogMessage)
	if err != nil {
		return 0, err
	}
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Series []struct {
			Pointlist [][]*float64 `json:"pointlist"` // [[ts_ms, value], ...]
		} `json:"series"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if res.Status == "error" { // a 200 can still be a failed query
		return 0, errors.New("query failed: " + d.client.excerpt(res.Error))
	}
	if len(res.Series) == 0 {
		return 0, ErrNoData
	}
	return lastValue(res.Series[0].Pointlist, func(p []*float64) *float64 {
		if len(p) < 2 {
			return nil
		}
		return p[1]
	})
}

// datadogMessage reads Datadog's {"errors": [...]}.
func datadogMessage(body []byte) string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return strings.Join(e.Errors, "; ")
}
