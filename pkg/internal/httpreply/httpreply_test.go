package httpreply

import (
	"errors"
	"fmt"
	"net/url"
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

func TestRedactURLs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://tester.test/gate/check", "http://tester.test/gate/check"},
		{"https://user:s3cr3t@hooks.example.com/x?token=s3cr3t&team=a", "https://redacted@hooks.example.com/x?team=redacted&token=redacted"},
		{"http://h/p#frag", "http://h/p"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	inner := errors.New("dial tcp: connection refused")
	got := RedactURLs(&url.Error{Op: "Post", URL: "https://u:s3cr3t@h/x?token=s3cr3t", Err: inner})
	if strings.Contains(got.Error(), "s3cr3t") || !errors.Is(got, inner) {
		t.Errorf("RedactURLs: %v", got)
	}
	if other := fmt.Errorf("other: %w", inner); RedactURLs(other) != other {
		t.Error("an error that is no *url.Error changed")
	}
}
