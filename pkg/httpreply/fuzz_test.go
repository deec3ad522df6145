package httpreply

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExcerptHidesSecrets: whatever a reply's body, its excerpt is one short
// line of valid UTF-8 that quotes neither secret. Secrets are the kind a
// Secret holds: no whitespace, no brackets (which could spell the marker
// with its neighbours), not a piece of the marker itself.
func FuzzExcerptHidesSecrets(f *testing.F) {
	f.Add("key abcdef and abc", "abc", "abcdef")
	f.Add("token=s3cr3t\n\tother=s3cr3t-longer", "s3cr3t-longer", "s3cr3t")
	f.Add(strings.Repeat("x", MaxQuotedBytes-2)+"tok3n", "tok3n", "k3")
	f.Add("a\xffbc", "abc", "zz")
	f.Add("éééé", "é", "ée")
	f.Fuzz(func(t *testing.T, body, s1, s2 string) {
		for _, s := range []string{s1, s2} {
			if s == "" || !utf8.ValidString(s) || strings.ContainsAny(s, "[]…") || strings.Contains(Redacted, s) ||
				len(strings.Fields(s)) != 1 || strings.Fields(s)[0] != s {
				t.Skip()
			}
		}
		got := NewRedactor(s1, s2).Excerpt(body)
		for _, s := range []string{s1, s2} {
			if strings.Contains(got, s) {
				t.Errorf("Excerpt(%q) = %q quotes secret %q", body, got, s)
			}
		}
		if !utf8.ValidString(got) || strings.ContainsAny(got, "\n\t\r") {
			t.Errorf("Excerpt(%q) = %q is not one line of valid UTF-8", body, got)
		}
		if len(got) > MaxQuotedBytes+len("…") {
			t.Errorf("Excerpt(%q) is %d bytes long", body, len(got))
		}
	})
}
