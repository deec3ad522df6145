package router

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	istionetworking "istio.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Split returns the primary and canary weights of t, in percent.
func Split(t analysis.Traffic) (primary, canary int32) {
	c := int32(min(max(t.CanaryWeight, 0), 100))
	return 100 - c, c
}

// ParseMatches turns the Istio-shaped match rules of a Canary
// (analysis.match, service.match) into Istio's typed HTTPMatchRequests, the
// one parser every router uses.
func ParseMatches(raw []apiextensionsv1.JSON) ([]*istionetworking.HTTPMatchRequest, error) {
	out := make([]*istionetworking.HTTPMatchRequest, 0, len(raw))
	for i, r := range raw {
		m := &istionetworking.HTTPMatchRequest{}
		// protojson refuses unknown fields, so a typo fails loudly.
		if err := protojson.Unmarshal(r.Raw, m); err != nil {
			return nil, fmt.Errorf("match[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// prefixRegex is the RE2 expression that matches, as a whole, exactly the
// values starting with prefix: the prefix quoted, then anything, line
// breaks included (a bare ".*" stops at a newline, so a prefix followed by
// one matched nothing).
func prefixRegex(prefix string) string {
	return regexp.QuoteMeta(prefix) + "(?s:.*)"
}

// MatchKind is how a string is compared.
type MatchKind string

// The string comparisons of Istio's StringMatch.
const (
	MatchExact  MatchKind = "Exact"
	MatchPrefix MatchKind = "Prefix"
	MatchRegex  MatchKind = "Regex"
)

// StringMatchOf flattens an Istio StringMatch for routers that do not speak
// Istio; ok is false for an empty match.
func StringMatchOf(m *istionetworking.StringMatch) (kind MatchKind, value string, ok bool) {
	switch {
	case m == nil:
		return "", "", false
	case m.GetExact() != "":
		return MatchExact, m.GetExact(), true
	case m.GetPrefix() != "":
		return MatchPrefix, m.GetPrefix(), true
	case m.GetRegex() != "":
		return MatchRegex, m.GetRegex(), true
	}
	return "", "", false
}

// defaultCookieMaxAge is sessionAffinity.maxAge when the API default did not
// fill it in.
const defaultCookieMaxAge = 86400

// setCookie is the Set-Cookie value that gives the client name=value, with
// the attributes sessionAffinity asks for. The API's patterns keep ';' and
// control characters out of the values.
func setCookie(sa *serinv1.SessionAffinity, name, value string) string {
	maxAge := sa.MaxAge
	if maxAge == 0 {
		maxAge = defaultCookieMaxAge
	}
	attrs := []string{name + "=" + value, "Max-Age=" + strconv.Itoa(maxAge)}
	if sa.Domain != "" {
		attrs = append(attrs, "Domain="+sa.Domain)
	}
	if sa.Path != "" {
		attrs = append(attrs, "Path="+sa.Path)
	}
	if sa.Secure {
		attrs = append(attrs, "Secure")
	}
	if sa.HttpOnly {
		attrs = append(attrs, "HttpOnly")
	}
	if sa.SameSite != "" {
		attrs = append(attrs, "SameSite="+sa.SameSite)
	}
	if sa.Partitioned {
		attrs = append(attrs, "Partitioned")
	}
	return strings.Join(attrs, "; ")
}
