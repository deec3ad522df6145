package router

import (
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// fullMatch compiles re as Envoy and the Gateway API implementations run
// it: RE2, matching the whole value.
func fullMatch(t *testing.T, re string) *regexp.Regexp {
	t.Helper()
	r, err := regexp.Compile(`^(?:` + re + `)$`)
	if err != nil {
		t.Fatalf("the router wrote %q, which is not an RE2 expression: %v", re, err)
	}
	return r
}

// checkPrefix checks that re, written for a prefix match on v, matches
// exactly the values that start with v.
func checkPrefix(t *testing.T, where, re, v string) {
	t.Helper()
	r := fullMatch(t, re)
	for _, s := range []string{v, v + "x", v + "/a b", v + v} {
		if !r.MatchString(s) {
			t.Fatalf("%s: prefix %q became %q, which does not match %q", where, v, re, s)
		}
	}
	// A value that differs from v in its last byte, or is shorter, does
	// not start with v.
	if len(v) > 0 {
		last := v[len(v)-1]
		other := v[:len(v)-1] + string(rune('a'+(last+1)%26))
		if other[len(other)-1] == last {
			other = v[:len(v)-1] + "#"
		}
		for _, s := range []string{v[:len(v)-1], other, other + "x"} {
			if !strings.HasPrefix(s, v) && r.MatchString(s) {
				t.Fatalf("%s: prefix %q became %q, which matches %q", where, v, re, s)
			}
		}
	}
}

// FuzzMatches parses arbitrary analysis.match rules as every router does
// and converts them for Contour, the Gateway API and NGINX. Nothing may
// panic; a parsed match survives a JSON round trip; every header and query
// parameter is converted once, with its value; a prefix becomes a regular
// expression that RE2 accepts and that matches exactly the values with
// that prefix, whatever characters the prefix holds.
func FuzzMatches(f *testing.F) {
	for _, seed := range []string{
		`{"headers":{"x-canary":{"exact":"insider"}}}`,
		`{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}},"uri":{"prefix":"/api"}}`,
		`{"headers":{"user-agent":{"prefix":"Mozilla/5.0 (X11; Linux x86_64) [a-z]*+?.$^\\"}}}`,
		`{"queryParams":{"v":{"prefix":"2.0|"}},"method":{"exact":"get"}}`,
		`{"uri":{"exact":"/"},"headers":{"x":{"exact":""}}}`,
		`{"headers":{"x":{"exakt":"1"}}}`,
		`{"method":{"regex":"P.*"}}`,
		`{"name":"n","port":8080,"sourceLabels":{"app":"a"}}`,
		`{"headers":{"a":{"prefix":"é\u0000"},"b":{"regex":"(("}}}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 8192 {
			t.Skip("larger than a match in a Canary")
		}
		matches, err := ParseMatches([]apiextensionsv1.JSON{{Raw: raw}})
		if err != nil {
			return
		}
		if len(matches) != 1 {
			t.Fatalf("one rule parsed into %d", len(matches))
		}
		m := matches[0]
		again, err := protojson.Marshal(m)
		if err != nil {
			t.Fatalf("marshalling %v: %v", m, err)
		}
		back, err := ParseMatches([]apiextensionsv1.JSON{{Raw: again}})
		if err != nil || !proto.Equal(back[0], m) {
			t.Fatalf("%s round-trips to %s: %v", raw, again, err)
		}

		for name, sm := range m.GetHeaders() {
			kind, v, ok := StringMatchOf(sm)
			if ok != (v != "") || (ok && kind != MatchExact && kind != MatchPrefix && kind != MatchRegex) {
				t.Fatalf("header %s: StringMatchOf = %q %q %v", name, kind, v, ok)
			}
		}

		conds, err := contourConditions(m)
		if err == nil {
			headers, params := map[string]int{}, map[string]int{}
			for _, c := range conds {
				switch {
				case c.Header != nil:
					headers[c.Header.Name]++
					kind, v, _ := StringMatchOf(m.GetHeaders()[c.Header.Name])
					switch kind {
					case MatchExact:
						if c.Header.Exact != v {
							t.Fatalf("contour header %s: exact %q, want %q", c.Header.Name, c.Header.Exact, v)
						}
					case MatchPrefix:
						checkPrefix(t, "contour header "+c.Header.Name, c.Header.Regex, v)
					case MatchRegex:
						if c.Header.Regex != v {
							t.Fatalf("contour header %s: regex %q, want %q", c.Header.Name, c.Header.Regex, v)
						}
					}
				case c.QueryParameter != nil:
					params[c.QueryParameter.Name]++
				}
			}
			for name := range m.GetHeaders() {
				if headers[name] != 1 {
					t.Fatalf("contour: header %s converted %d times", name, headers[name])
				}
			}
			for name := range m.GetQueryParams() {
				if params[name] != 1 {
					t.Fatalf("contour: query parameter %s converted %d times", name, params[name])
				}
			}
		}

		gw, err := gatewayAPIMatch(m)
		if err == nil {
			if len(gw.Headers) != len(m.GetHeaders()) || len(gw.QueryParams) != len(m.GetQueryParams()) {
				t.Fatalf("gateway API: %d headers and %d query parameters from %d and %d", len(gw.Headers), len(gw.QueryParams), len(m.GetHeaders()), len(m.GetQueryParams()))
			}
			for _, h := range gw.Headers {
				kind, v, _ := StringMatchOf(m.GetHeaders()[string(h.Name)])
				switch kind {
				case MatchExact:
					if string(*h.Type) != "Exact" || h.Value != v {
						t.Fatalf("gateway API header %s: %s %q, want Exact %q", h.Name, *h.Type, h.Value, v)
					}
				case MatchPrefix:
					if string(*h.Type) != "RegularExpression" {
						t.Fatalf("gateway API header %s: prefix as %s", h.Name, *h.Type)
					}
					checkPrefix(t, "gateway API header "+string(h.Name), h.Value, v)
				case MatchRegex:
					if string(*h.Type) != "RegularExpression" || h.Value != v {
						t.Fatalf("gateway API header %s: %s %q, want RegularExpression %q", h.Name, *h.Type, h.Value, v)
					}
				}
			}
			for _, q := range gw.QueryParams {
				if kind, v, _ := StringMatchOf(m.GetQueryParams()[string(q.Name)]); kind == MatchPrefix {
					checkPrefix(t, "gateway API query parameter "+string(q.Name), q.Value, v)
				}
			}
			if gw.Method != nil && string(*gw.Method) != strings.ToUpper(m.GetMethod().GetExact()) {
				t.Fatalf("gateway API method %s from %v", *gw.Method, m.GetMethod())
			}
		}

		n := &NginxRouter{AnnotationPrefix: "nginx.ingress.kubernetes.io"}
		canary := &serinv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "podinfo"},
			Spec:       serinv1.CanarySpec{Analysis: serinv1.CanaryAnalysis{Match: []apiextensionsv1.JSON{{Raw: raw}}}},
		}
		a, err := n.canaryAnnotations(canary, analysis.Traffic{MatchToCanary: true})
		if err == nil {
			if a[n.annotation("canary")] != "true" || a[n.annotation("canary-weight")] != "0" {
				t.Fatalf("nginx A/B annotations %v", a)
			}
			if h, ok := a[n.annotation("canary-by-header")]; ok {
				if _, ok := m.GetHeaders()[h]; !ok {
					t.Fatalf("nginx matches header %q, which the rule does not name", h)
				}
			}
		}
	})
}
