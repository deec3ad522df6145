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
	s := string(body[:min(len(body), MaxQuotedBytes)])
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if s == "" {
		return errors.New(msg)
	}
	if len(body) > MaxQuotedBytes {
		s += "…"
	}
	return fmt.Errorf("%s: %s", msg, s)
}
