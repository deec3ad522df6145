package webhook

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

const (
	// TokenKey is the Secret key sent as a bearer token.
	TokenKey = "token"
	// HeaderKeyPrefix starts the Secret keys sent as headers: the key
	// "header.X-Api-Key" is sent as the header X-Api-Key.
	HeaderKeyPrefix = "header."
)

// AuthHeader builds the header a hook's Secret asks for: its "token" as
// "Authorization: Bearer <token>" and each "header.<Name>" as <Name>. Other
// keys are ignored, so that one Secret may also hold, say, a CA bundle. The
// error names the key at fault, never its value.
func AuthHeader(data map[string][]byte) (http.Header, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	header := http.Header{}
	for _, k := range keys {
		value := strings.TrimSpace(string(data[k]))
		var name string
		switch {
		case k == TokenKey:
			name, value = "Authorization", "Bearer "+value
		case strings.HasPrefix(k, HeaderKeyPrefix):
			name = strings.TrimPrefix(k, HeaderKeyPrefix)
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, fmt.Errorf("key %q: %q is not a valid header name", k, name)
			}
		default:
			continue
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, fmt.Errorf("key %q: the value is not a valid header value", k)
		}
		if header.Get(name) != "" {
			return nil, fmt.Errorf("key %q: header %s is set twice", k, name)
		}
		header.Set(name, value)
	}
	if len(header) == 0 {
		return nil, fmt.Errorf("the Secret has neither a %q key nor %q keys", TokenKey, HeaderKeyPrefix+"<Name>")
	}
	return header, nil
}
