// Package httpreply describes the replies of the HTTP services Serin calls
// (webhooks, metrics backends, alert receivers) for Events and conditions:
// the one status error, the one excerpt of a body and the one redaction of
// secrets and URLs. It is public because cmd/serin-tester and the
// controller quote replies too; the transports live in pkg/internal/httpx.
package httpreply

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxQuotedBytes is how much of a refusal's body an error quotes: enough to
// say why, short enough for an Event.
const MaxQuotedBytes = 256

// StatusError is a reply outside 2xx: its status, its Retry-After and the
// start of its body, the excerpt, already redacted and cut.
type StatusError struct {
	Code       int
	RetryAfter string // the header as sent; shown for 429
	Excerpt    string // see Redactor.Excerpt
}

// NewStatusError is the error for a reply with the given status code and
// header, quoting excerpt (see Redactor.Excerpt). header may be nil.
func NewStatusError(code int, header http.Header, excerpt string) *StatusError {
	return &StatusError{Code: code, RetryAfter: strings.TrimSpace(header.Get("Retry-After")), Excerpt: excerpt}
}

func (e *StatusError) Error() string {
	var b strings.Builder
	switch {
	case e.Code == http.StatusTooManyRequests:
		b.WriteString("rate limited (HTTP 429")
		if e.RetryAfter != "" {
			b.WriteString("; retry after " + e.RetryAfter)
			if _, err := strconv.Atoi(e.RetryAfter); err == nil {
				b.WriteString("s")
			}
		}
		b.WriteString(")")
	default:
		fmt.Fprintf(&b, "HTTP %d %s", e.Code, http.StatusText(e.Code))
		if e.Code >= 300 && e.Code < 400 {
			b.WriteString(" (redirects are not followed)")
		}
	}
	if e.Excerpt != "" {
		b.WriteString(": " + e.Excerpt)
	}
	return b.String()
}

// Excerpt is the start of a body as one line of valid UTF-8, at most
// MaxQuotedBytes of it, marked with … when cut.
func Excerpt(body []byte) string { return (*Redactor)(nil).Excerpt(string(body)) }

// Redactor replaces secrets in the text of errors. Its zero value and nil
// redact nothing. It is safe for concurrent use.
type Redactor struct {
	secrets []string // longest first, no empty or repeated value
}

// Redacted replaces each secret.
const Redacted = "[redacted]"

// NewRedactor redacts secrets; empty values are ignored.
func NewRedactor(secrets ...string) *Redactor {
	s := slices.DeleteFunc(slices.Clone(secrets), func(v string) bool { return v == "" })
	// Longest first, so that a secret that contains another is replaced
	// whole rather than leaving its rest around the shorter one's mark.
	slices.SortFunc(s, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return &Redactor{secrets: slices.Compact(s)}
}

// Redact returns s with every secret replaced, longest first.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return s
}

// Excerpt makes s one short line of valid UTF-8 without secrets: redacted
// before the whitespace is collapsed (a secret may hold a tab) and again
// after, and before it is cut, so that no part of a secret survives the
// cut. A cut falls on a rune boundary and ends with ….
func (r *Redactor) Excerpt(s string) string {
	s = r.Redact(s)
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	s = r.Redact(s)
	if len(s) <= MaxQuotedBytes {
		return s
	}
	cut := MaxQuotedBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Error returns err with message msg, redacted; errors.Is and errors.As
// still see err.
func (r *Redactor) Error(msg string, err error) error {
	return &redactedError{msg: r.Redact(msg), err: err}
}

// redactedError is an error whose text has been redacted; Unwrap keeps
// errors.Is (ErrNoData, context errors) working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactURLs returns err, a *url.Error as net/http's client returns it,
// with its URL's userinfo and query values redacted: a webhook URL may carry
// a token there, and the error ends up in Events, conditions and alerts.
// Other errors are returned as they are.
func RedactURLs(err error) error {
	uerr, ok := err.(*url.Error)
	if !ok {
		return err
	}
	redacted := *uerr
	redacted.URL = RedactURL(uerr.URL)
	if redacted.URL == uerr.URL {
		return err
	}
	return &redacted
}

// RedactURL is s without its userinfo and with every query value replaced;
// a string that does not parse is replaced whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
