package providers

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// influxDB runs Flux with InfluxDB v2's query API:
// https://docs.influxdata.com/influxdb/v2/api/#operation/PostQuery
// The window is unused: Flux carries its own, e.g. range(start: -1m).
type influxDB struct {
	endpoint string
	client   *client
}

// newInfluxDB needs an address and the token credential; the optional org
// credential names the organization when the token spans several.
func newInfluxDB(cfg Config) (Provider, error) {
	base, err := baseURL(cfg.Address, "")
	if err != nil {
		return nil, err
	}
	token, err := credential(cfg, "token")
	if err != nil {
		return nil, err
	}
	endpoint := base + "/api/v2/query"
	if org := cfg.Credentials["org"]; len(org) > 0 {
		endpoint += "?" + url.Values{"org": {string(org)}}.Encode()
	}
	header := headerWith(cfg)
	header.Set("Authorization", "Token "+token)
	return &influxDB{endpoint: endpoint, client: newClient(cfg, header)}, nil
}

// Query returns the _value of the first row of the first table.
func (i *influxDB) Query(ctx context.Context, query string, _ time.Duration) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.endpoint, strings.NewReader(query))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")
	body, err := i.client.do(req, influxMessage)
	if err != nil {
		return 0, err
	}
	return i.firstValue(body)
}

// firstValue reads annotated CSV: annotation rows start with '#', then each
// table has a header row and data rows. A query that fails once results
// stream answers 200 with a table whose columns are error and reference.
func (i *influxDB) firstValue(body []byte) (float64, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.Comment = '#'
	r.FieldsPerRecord = -1 // tables differ in width
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return 0, ErrNoData
	}
	if err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	row, err := r.Read()
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if col := slices.Index(header, "error"); col >= 0 && col < len(row) {
		return 0, errors.New("query failed: " + i.client.excerpt(row[col]))
	}
	col := slices.Index(header, "_value")
	if col < 0 {
		return 0, errors.New("decoding response: no _value column")
	}
	if row == nil {
		return 0, ErrNoData
	}
	if col >= len(row) {
		return 0, errors.New("decoding response: row shorter than its header")
	}
	if row[col] == "" { // a null
		return 0, ErrNoData
	}
	v, err := strconv.ParseFloat(row[col], 64)
	if err != nil {
		return 0, fmt.Errorf("_value is not a number: %w", err)
	}
	return v, nil
}

// influxMessage reads InfluxDB's {"code": "...", "message": "..."}.
func influxMessage(body []byte) string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	return e.Code + ": " + e.Message
}
