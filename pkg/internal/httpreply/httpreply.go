// Package httpreply describes the replies of the HTTP services Serin calls
// (webhooks, alert receivers) for Events and conditions.
package httpreply

import (
	"errors"
	"fmt"
	"net/http"
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
