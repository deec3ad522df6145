package httpreply

import (
	"strings"
	"testing"
)

func TestStatusError(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"no body", 503, "", "status 503 Service Unavailable"},
		{"the body on one line", 400, "bad\n  request\tbody", "status 400 Bad Request: bad request body"},
		{"a redirect says it was not followed", 302, "", "status 302 Found (redirects are not followed)"},
		{"invalid UTF-8 is dropped", 500, "a\xffb", "status 500 Internal Server Error: ab"},
		{"a long body is cut", 500, strings.Repeat("x", MaxQuotedBytes+10), "status 500 Internal Server Error: " + strings.Repeat("x", MaxQuotedBytes) + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusError(tt.code, []byte(tt.body)).Error(); got != tt.want {
				t.Errorf("StatusError(%d, %q) = %q, want %q", tt.code, tt.body, got, tt.want)
			}
		})
	}
}
