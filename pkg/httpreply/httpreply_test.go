package httpreply

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestStatusError(t *testing.T) {
	for _, tt := range []struct {
		name       string
		code       int
		retryAfter string
		body       string
		want       string
	}{
		{"no body", 503, "", "", "HTTP 503 Service Unavailable"},
		{"the body on one line", 400, "", "bad\n  request\tbody", "HTTP 400 Bad Request: bad request body"},
		{"a redirect says it was not followed", 302, "", "", "HTTP 302 Found (redirects are not followed)"},
		{"invalid UTF-8 is dropped", 500, "", "a\xffb", "HTTP 500 Internal Server Error: ab"},
		{"a long body is cut", 500, "", strings.Repeat("x", MaxQuotedBytes+10), "HTTP 500 Internal Server Error: " + strings.Repeat("x", MaxQuotedBytes) + "…"},
		{"rate limited, in seconds", 429, " 30 ", "slow down", "rate limited (HTTP 429; retry after 30s): slow down"},
		{"rate limited, at a date", 429, "Wed, 21 Oct 2015 07:28:00 GMT", "", "rate limited (HTTP 429; retry after Wed, 21 Oct 2015 07:28:00 GMT)"},
		{"rate limited, no hint", 429, "", "", "rate limited (HTTP 429)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.retryAfter != "" {
				header.Set("Retry-After", tt.retryAfter)
			}
			if got := NewStatusError(tt.code, header, Excerpt([]byte(tt.body))).Error(); got != tt.want {
				t.Errorf("status %d, body %q: %q, want %q", tt.code, tt.body, got, tt.want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	r := NewRedactor("s3cr3t", "s3cr3t-longer", "tab\tbed")
	long := strings.Repeat("é", MaxQuotedBytes) // 2 bytes per rune
	for _, tt := range []struct {
		name, in, want string
	}{
		{"whitespace collapsed", "  bad\n\tquery  ", "bad query"},
		{"secrets redacted, longest first", "key s3cr3t-longer and s3cr3t", "key [redacted] and [redacted]"},
		{"a secret with whitespace", "x tab\tbed y", "x [redacted] y"},
		{"cut on a rune boundary", long, strings.Repeat("é", MaxQuotedBytes/2) + "…"},
		{"invalid UTF-8 dropped", "a\xffb", "ab"},
		{"redacted before the cut", strings.Repeat("x", MaxQuotedBytes-3) + "s3cr3t", strings.Repeat("x", MaxQuotedBytes-3) + "[re…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Excerpt(tt.in); got != tt.want {
				t.Errorf("Excerpt(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactLongestFirst: a secret that contains another is replaced whole,
// whatever order the secrets come in; a shorter one replaced first would
// leave the longer one's rest in clear ("[redacted]def").
func TestRedactLongestFirst(t *testing.T) {
	for _, secrets := range [][]string{{"abc", "abcdef"}, {"abcdef", "abc"}, {"", "abc", "abcdef", "abc"}} {
		r := NewRedactor(secrets...)
		if got, want := r.Redact("key=abcdef, other=abc"), "key=[redacted], other=[redacted]"; got != want {
			t.Errorf("secrets %q: Redact = %q, want %q", secrets, got, want)
		}
	}
	var none *Redactor
	if got := none.Redact("abc"); got != "abc" {
		t.Errorf("nil Redactor changed %q", got)
	}
	if got := NewRedactor("").Redact("abc"); got != "abc" {
		t.Errorf("an empty secret redacted %q", got)
	}
}

func TestRedactedError(t *testing.T) {
	inner := errors.New("token t0k3n refused")
	err := NewRedactor("t0k3n").Error("call: "+inner.Error(), inner)
	if err.Error() != "call: token [redacted] refused" || !errors.Is(err, inner) {
		t.Errorf("Error = %q, errors.Is = %v", err, errors.Is(err, inner))
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
