package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// tokensTTL is how long a read of --tokens-dir is trusted: a token
	// removed from the directory stops working within it.
	tokensTTL = 10 * time.Second
	// tokensMissRetry is how soon a token that matches nothing makes the
	// directory be read again, so that a namespace added to a mounted
	// Secret works without waiting for tokensTTL, while a flood of bad
	// tokens costs at most one read per interval.
	tokensMissRetry = time.Second
	// maxTokenFileBytes caps what is read of one token file.
	maxTokenFileBytes = 4 << 10
)

// namespaceName is a Kubernetes namespace name (a DNS-1123 label).
var namespaceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// principal is who a request was authenticated as.
type principal struct {
	// any is set for the operator token and without authentication: the
	// caller may act for every namespace --namespace-regexp allows.
	any bool
	// namespace is the only namespace a namespace token may act for.
	namespace string
}

// authError is a refused authentication: the status code and the message
// the caller gets.
type authError struct {
	code int
	msg  string
}

func (e *authError) Error() string { return e.msg }

// nsToken is the SHA-256 of one namespace's token: tokens are compared by
// their hashes, in constant time and without their lengths showing, and
// are not kept in memory otherwise.
type nsToken struct {
	namespace string
	sum       [sha256.Size]byte
}

// authenticator checks bearer tokens: the operator token (--bearer-token
// or $SERIN_TESTER_TOKEN) valid for every namespace, and the per-namespace
// tokens of --tokens-dir, each valid for its own namespace only.
type authenticator struct {
	insecure bool
	operator *[sha256.Size]byte
	dir      string
	log      *slog.Logger
	now      func() time.Time

	mu sync.Mutex
	// tokens is the last read of dir; nil while dir cannot be read, so
	// that namespace tokens fail closed.
	tokens []nsToken
	// readAt is when dir was last read, attempted is when a read was
	// last attempted.
	readAt, attempted time.Time
	// fingerprint identifies what was read, so that the log only says
	// something when it changes.
	fingerprint string
}

func newAuthenticator(insecure bool, operatorToken, dir string, log *slog.Logger) (*authenticator, error) {
	a := &authenticator{insecure: insecure, dir: dir, log: log, now: time.Now}
	if operatorToken != "" {
		sum := sha256.Sum256([]byte(operatorToken))
		a.operator = &sum
	}
	if dir != "" {
		// The directory must be readable at start-up: a typo in the
		// flag or a missing mount should not look like "no tenants".
		if _, err := os.ReadDir(dir); err != nil {
			return nil, fmt.Errorf("--tokens-dir: %w", err)
		}
		a.mu.Lock()
		a.reloadLocked()
		a.mu.Unlock()
	}
	return a, nil
}

// configured tells whether any token can be accepted.
func (a *authenticator) configured() bool { return a.operator != nil || a.dir != "" }

// mode describes the authentication for the start-up log line; it never
// includes a token.
func (a *authenticator) mode() (slog.Level, string) {
	switch {
	case a.insecure:
		return slog.LevelWarn, "DISABLED by --insecure-no-auth: every request is accepted without a token, for any namespace; for local use only"
	case !a.configured():
		return slog.LevelError, "no token configured: EVERY REQUEST IS REFUSED with 401; set --tokens-dir, --bearer-token or $" + tokenEnv + " (or --insecure-no-auth for local use)"
	case a.operator != nil && a.dir != "":
		return slog.LevelInfo, "bearer tokens: per-namespace tokens from --tokens-dir and an operator token for every namespace"
	case a.dir != "":
		return slog.LevelInfo, "bearer tokens: per-namespace tokens from --tokens-dir"
	default:
		return slog.LevelInfo, "bearer token: an operator token for every namespace"
	}
}

// authenticate finds who the request's bearer token belongs to.
func (a *authenticator) authenticate(r *http.Request) (principal, error) {
	if a.insecure {
		return principal{any: true}, nil
	}
	if !a.configured() {
		return principal{}, &authError{http.StatusUnauthorized,
			"serin-tester has no token configured and refuses every request: its operator must set --tokens-dir, --bearer-token or $" + tokenEnv}
	}
	token, ok := bearerToken(r)
	if !ok {
		return principal{}, &authError{http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token> (a Canary webhook's secretRef names a Secret whose key token holds it)"}
	}
	sum := sha256.Sum256([]byte(token))
	if a.operator != nil && subtle.ConstantTimeCompare(sum[:], a.operator[:]) == 1 {
		return principal{any: true}, nil
	}
	if a.dir != "" {
		if ns, ok := a.lookup(sum); ok {
			return principal{namespace: ns}, nil
		}
	}
	return principal{}, &authError{http.StatusUnauthorized, "invalid bearer token"}
}

// bearerToken reads "Authorization: Bearer <token>"; the scheme is
// case-insensitive (RFC 9110), the token is not.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// lookup returns the namespace whose token hashes to sum. Every token is
// compared, so that the time taken does not tell which one matched.
func (a *authenticator) lookup(sum [sha256.Size]byte) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Sub(a.readAt) >= tokensTTL && now.Sub(a.attempted) >= tokensMissRetry {
		a.reloadLocked()
	}
	ns, ok := match(a.tokens, sum)
	if !ok && now.Sub(a.attempted) >= tokensMissRetry {
		a.reloadLocked()
		ns, ok = match(a.tokens, sum)
	}
	return ns, ok
}

func match(tokens []nsToken, sum [sha256.Size]byte) (string, bool) {
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(tokens[i].sum[:], sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return tokens[found].namespace, true
}

// reloadLocked reads the tokens directory, logging only what changed. A
// directory that cannot be read leaves no namespace token valid.
func (a *authenticator) reloadLocked() {
	now := a.now()
	a.attempted = now
	tokens, problems, err := readTokensDir(a.dir)
	if err != nil {
		if a.tokens != nil || a.fingerprint != "error" {
			a.log.Error("cannot read --tokens-dir: namespace tokens are refused until it can be read", "dir", a.dir, "error", err.Error())
		}
		a.tokens, a.fingerprint = nil, "error"
		return
	}
	a.readAt = now
	if a.operator != nil {
		for _, t := range tokens {
			if t.sum == *a.operator {
				problems = append(problems, fmt.Sprintf("the token of namespace %q is the operator token, valid for every namespace", t.namespace))
			}
		}
	}
	fp := fingerprint(tokens, problems)
	if fp != a.fingerprint {
		namespaces := make([]string, len(tokens))
		for i, t := range tokens {
			namespaces[i] = t.namespace
		}
		a.log.Info("namespace tokens loaded", "dir", a.dir, "count", len(tokens), "namespaces", strings.Join(namespaces, ","))
		for _, p := range problems {
			a.log.Warn("--tokens-dir: " + p)
		}
	}
	a.tokens, a.fingerprint = tokens, fp
}

// fingerprint identifies a read of the tokens directory without
// containing any token.
func fingerprint(tokens []nsToken, problems []string) string {
	h := sha256.New()
	for _, t := range tokens {
		_, _ = io.WriteString(h, t.namespace+"\x00")
		_, _ = h.Write(t.sum[:])
	}
	for _, p := range problems {
		_, _ = io.WriteString(h, p+"\x00")
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// readTokensDir reads a directory where each file is named after a
// namespace and holds its token, as a Secret mounted as a volume is: the
// entries starting with a dot (Kubernetes' ..data and timestamped
// directories) are skipped, symlinks are followed. It returns the tokens
// sorted by namespace and the problems that made it skip files; a token
// shared by several namespaces is refused for all of them, since it could
// not tell them apart.
func readTokensDir(dir string) ([]nsToken, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var (
		tokens   []nsToken
		problems []string
	)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("skipping %q: %v", name, err))
			continue
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if !namespaceName.MatchString(name) {
			problems = append(problems, fmt.Sprintf("skipping %q: not a namespace name", name))
			continue
		}
		token, err := readTokenFile(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("skipping %q: %v", name, err))
			continue
		}
		tokens = append(tokens, nsToken{namespace: name, sum: sha256.Sum256([]byte(token))})
	}
	slices.SortFunc(tokens, func(a, b nsToken) int { return strings.Compare(a.namespace, b.namespace) })

	shared := map[[sha256.Size]byte][]string{}
	for _, t := range tokens {
		shared[t.sum] = append(shared[t.sum], t.namespace)
	}
	kept := tokens[:0]
	for _, t := range tokens {
		if names := shared[t.sum]; len(names) > 1 {
			if names[0] == t.namespace {
				problems = append(problems, fmt.Sprintf("namespaces %s share a token: it is refused for all of them", strings.Join(names, ", ")))
			}
			continue
		}
		kept = append(kept, t)
	}
	return kept, problems, nil
}

func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTokenFileBytes {
		return "", fmt.Errorf("larger than %d bytes", maxTokenFileBytes)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New("empty token")
	}
	return token, nil
}
