package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// graphite queries Graphite's render API:
// https://graphite.readthedocs.io/en/latest/render_api.html
type graphite struct {
	base   string
	client *client
}

// newGraphite needs an address; username and password credentials, both
// or neither, enable basic auth.
func newGraphite(cfg Config) (Provider, error) {
	base, err := baseURL(cfg.Address, "")
	if err != nil {
		return nil, err
	}
	basic, err := basicAuth(cfg)
	if err != nil {
		return nil, err
	}
	header := headerWith(cfg)
	if basic != "" {
		header.Set("Authorization", basic)
	}
	return &graphite{base: base, client: newClient(cfg, header)}, nil
}

// Query returns the last non-null datapoint of the first target.
func (g *graphite) Query(ctx context.Context, query string, window time.Duration) (float64, error) {
	seconds, err := windowSeconds(window)
	if err != nil {
		return 0, err
	}
	params := url.Values{
		"target": {query},
		"from":   {fmt.Sprintf("-%ds", seconds)},
		"format": {"json"},
	}
	body, err := g.client.get(ctx, g.base+"/render?"+params.Encode(), nil) // errors are plain text or HTML
	if err != nil {
		return 0, err
	}
	var targets []struct {
		Datapoints [][]*float64 `json:"datapoints"` // [[value, ts], ...]
	}
	if err := json.Unmarshal(body, &targets); err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if len(targets) == 0 {
		return 0, ErrNoData
	}
	return lastValue(targets[0].Datapoints, func(p []*float64) *float64 {
		if len(p) < 1 {
			return nil
		}
		return p[0]
	})
}
