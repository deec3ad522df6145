package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"
)

// newRelic runs NRQL with New Relic's Insights query API:
// https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/
// The window is unused: NRQL carries its own, e.g. SINCE 1 minute ago.
type newRelic struct {
	endpoint string // up to and including /query
	client   *client
}

// newNewRelic needs the newrelic_account_id and newrelic_query_key
// credentials; the address defaults to New Relic's US Insights API.
func newNewRelic(cfg Config) (Provider, error) {
	base, err := baseURL(cfg.Address, "https://insights-api.newrelic.com")
	if err != nil {
		return nil, err
	}
	account, err := credential(cfg, "newrelic_account_id")
	if err != nil {
		return nil, err
	}
	key, err := credential(cfg, "newrelic_query_key")
	if err != nil {
		return nil, err
	}
	header := headerWith(cfg)
	header.Set("X-Query-Key", key)
	return &newRelic{
		endpoint: base + "/v1/accounts/" + url.PathEscape(account) + "/query",
		client:   newClient(cfg, header),
	}, nil
}

// Query returns the first number of the first result, whatever the NRQL
// function naming it ({"average": 1.2}, {"count": 3}, {"percentiles": {...}}).
func (n *newRelic) Query(ctx context.Context, query string, _ time.Duration) (float64, error) {
	body, err := n.client.get(ctx, n.endpoint+"?"+url.Values{"nrql": {query}}.Encode(), newRelicMessage)
	if err != nil {
		return 0, err
	}
	var res struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if len(res.Results) == 0 {
		return 0, ErrNoData
	}
	return firstNumber(res.Results[0])
}

// firstNumber walks a JSON document in order, which a map would not keep,
// and returns its first number; nulls do not count.
func firstNumber(doc json.RawMessage) (float64, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return 0, ErrNoData
		}
		if err != nil {
			return 0, err
		}
		if n, ok := tok.(json.Number); ok {
			return n.Float64()
		}
	}
}

// newRelicMessage reads New Relic's {"error": "..."}.
func newRelicMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}
