package flags

import (
	"regexp"
	"strconv"
	"strings"
)

// semVersion is a parsed semantic version (build metadata dropped: it
// does not order versions).
type semVersion struct {
	major, minor, patch uint64
	pre                 []string
}

var (
	semVerText = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:\d*[a-zA-Z-][a-zA-Z0-9-]*|0|[1-9]\d*)(?:\.(?:\d*[a-zA-Z-][a-zA-Z0-9-]*|0|[1-9]\d*))*))?` +
		`(?:\+[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*)?$`)
	partialVersion = regexp.MustCompile(`^\d+(\.\d+)?$`)
	numericID      = regexp.MustCompile(`^\d+$`)
)

const maxSafeInteger = 1<<53 - 1

// parseSemVer reads a version as flagd's sem_ver does: a leading v or V
// is dropped, a full semantic version is read strictly (surrounding white
// space allowed), and "1" or "1.2" stand for 1.0.0 and 1.2.0.
func parseSemVer(raw string) (semVersion, bool) {
	s := raw
	if s != "" && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	if len(s) <= 256 {
		if m := semVerText.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
			var v semVersion
			for i, p := range []*uint64{&v.major, &v.minor, &v.patch} {
				n, err := strconv.ParseUint(m[i+1], 10, 64)
				if err != nil || n > maxSafeInteger {
					return semVersion{}, false
				}
				*p = n
			}
			if m[4] != "" {
				v.pre = strings.Split(m[4], ".")
			}
			return v, true
		}
	}
	if partialVersion.MatchString(s) {
		major, minor, _ := strings.Cut(s, ".")
		var v semVersion
		var err error
		if len(major) > 16 || len(minor) > 16 {
			return semVersion{}, false
		}
		if v.major, err = strconv.ParseUint(major, 10, 64); err != nil {
			return semVersion{}, false
		}
		if minor != "" {
			if v.minor, err = strconv.ParseUint(minor, 10, 64); err != nil {
				return semVersion{}, false
			}
		}
		return v, true
	}
	return semVersion{}, false
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareSemVer orders versions by semantic version precedence.
func compareSemVer(a, b semVersion) int {
	if c := cmpUint(a.major, b.major); c != 0 {
		return c
	}
	if c := cmpUint(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmpUint(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; ; i++ {
		switch {
		case i == len(a.pre) && i == len(b.pre):
			return 0
		case i == len(a.pre):
			return -1
		case i == len(b.pre):
			return 1
		}
		x, y := a.pre[i], b.pre[i]
		xn, yn := numericID.MatchString(x), numericID.MatchString(y)
		switch {
		case xn && yn:
			fx, _ := strconv.ParseFloat(x, 64)
			fy, _ := strconv.ParseFloat(y, 64)
			if fx != fy {
				if fx < fy {
					return -1
				}
				return 1
			}
		case xn:
			return -1
		case yn:
			return 1
		case x != y:
			if x < y {
				return -1
			}
			return 1
		}
	}
}

// semVerOp is flagd's sem_ver: [version, operator, version] with operator
// one of = != < <= > >= ^ (same major) ~ (same major and minor); a
// malformed call is null.
func semVerOp(a []any) any {
	if len(a) != 3 {
		return nil
	}
	x, ok1 := parseSemVer(jsString(a[0]))
	y, ok2 := parseSemVer(jsString(a[2]))
	if !ok1 || !ok2 {
		return nil
	}
	c := compareSemVer(x, y)
	switch jsString(a[1]) {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">=":
		return c >= 0
	case ">":
		return c > 0
	case "^":
		return x.major == y.major
	case "~":
		return x.major == y.major && x.minor == y.minor
	}
	return nil
}
