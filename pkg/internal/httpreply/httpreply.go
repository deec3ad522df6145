// Package httpreply describes the replies of the HTTP services Serin calls
// (webhooks, alert receivers) for Events and conditions.
package httpreply

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MaxQuotedBytes is how much of a refusal's body an error quotes: enough to
// say why, short enough for an Event.
const MaxQuotedBytes = 256

// StatusError explains a refusal with the status and the start of the body,
// as one line of valid UTF-8.
func StatusError(code int, body []byte) error {
	msg := fmt.Sprintf("status %d %s", code, http.StatusText(code))
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed)"
	}
	s := Excerpt(body)
	if s == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", msg, s)
}

// Excerpt is the start of a body as one line of valid UTF-8, at most
// MaxQuotedBytes of it, marked with … when cut.
func Excerpt(body []byte) string {
	s := string(body[:min(len(body), MaxQuotedBytes)])
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if s != "" && len(body) > MaxQuotedBytes {
		s += "…"
	}
	return s
}

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
