package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// errDeniedAddress marks a connection the host policy refused.
var errDeniedAddress = errors.New("address refused by the load host policy")

// lookupTimeout bounds the resolution that checks a load's host before
// the load starts.
const lookupTimeout = 5 * time.Second

// hostPolicy decides where loads may send requests. Without patterns any
// host may be a target; with patterns, only those matching one. Either
// way, the addresses of loopback, link-local (cloud metadata services
// among them), unspecified and the API server's Service are refused unless
// an IP or CIDR pattern covers them: a host name pattern never does, so
// that a name that resolves (or rebinds) to such an address is refused.
// The addresses are checked when connecting, after resolution.
type hostPolicy struct {
	names    []string // exact host names, lower case
	suffixes []string // from *.example.com: ".example.com"
	prefixes []netip.Prefix
	// apiServer is $KUBERNETES_SERVICE_HOST, when it is an address.
	apiServer netip.Addr
	// lookup resolves host names; tests replace it.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// deniedPrefixes are refused unless an IP or CIDR pattern covers them.
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
}

// newHostPolicy reads the --load-allow-host patterns: host names, *.suffix
// wildcards, IP addresses and CIDR prefixes.
func newHostPolicy(patterns []string) (*hostPolicy, error) {
	p := &hostPolicy{lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		switch {
		case pat == "":
			continue
		case strings.Contains(pat, "/"):
			pfx, err := netip.ParsePrefix(pat)
			if err != nil {
				return nil, fmt.Errorf("--load-allow-host %q: %w", pat, err)
			}
			p.prefixes = append(p.prefixes, pfx.Masked())
		case isIPLiteral(pat):
			a, _ := netip.ParseAddr(strings.Trim(pat, "[]"))
			a = a.Unmap()
			p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
		case strings.HasPrefix(pat, "*."):
			if !validHostName(pat[2:]) {
				return nil, fmt.Errorf("--load-allow-host %q: not a host name, *.domain, IP address or CIDR prefix", pat)
			}
			p.suffixes = append(p.suffixes, pat[1:])
		default:
			if !validHostName(pat) {
				return nil, fmt.Errorf("--load-allow-host %q: not a host name, *.domain, IP address or CIDR prefix", pat)
			}
			p.names = append(p.names, pat)
		}
	}
	if a, err := netip.ParseAddr(os.Getenv("KUBERNETES_SERVICE_HOST")); err == nil {
		p.apiServer = a.Unmap()
	}
	return p, nil
}

func isIPLiteral(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// validHostName accepts the host names a URL may carry: letters, digits,
// hyphens, underscores and dots.
func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// describe says what the policy allows, for the start-up log.
func (p *hostPolicy) describe() string {
	var pats []string
	pats = append(pats, p.names...)
	for _, s := range p.suffixes {
		pats = append(pats, "*"+s)
	}
	for _, pfx := range p.prefixes {
		pats = append(pats, pfx.String())
	}
	if len(pats) == 0 {
		return "any host but loopback, link-local and the API server"
	}
	return "only " + strings.Join(pats, ",") + " (loopback, link-local and the API server only where an IP or CIDR pattern covers them)"
}

func (p *hostPolicy) restricted() bool {
	return len(p.names) > 0 || len(p.suffixes) > 0 || len(p.prefixes) > 0
}

// allowHost checks a URL's host (without port) before anything is sent:
// the API server's names, the patterns, and the address of an IP literal.
func (p *hostPolicy) allowHost(host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		a = a.Unmap()
		if err := p.deniedAddr(a); err != nil {
			return err
		}
		if p.restricted() && !p.covered(a) {
			return fmt.Errorf("address %s matches no --load-allow-host pattern", a)
		}
		return nil
	}
	if isAPIServerName(host) && !slices.Contains(p.names, host) {
		return fmt.Errorf("host %q is the Kubernetes API server, which loads may not target", host)
	}
	if !p.restricted() || slices.Contains(p.names, host) {
		return nil
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) {
			return nil
		}
	}
	return fmt.Errorf("host %q matches no --load-allow-host pattern", host)
}

// isAPIServerName tells whether host names the API server's Service, in
// whatever cluster domain.
func isAPIServerName(host string) bool {
	return host == "kubernetes" || host == "kubernetes.default" ||
		host == "kubernetes.default.svc" || strings.HasPrefix(host, "kubernetes.default.svc.")
}

// covered tells whether an IP or CIDR pattern covers a.
func (p *hostPolicy) covered(a netip.Addr) bool {
	for _, pfx := range p.prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// deniedAddr refuses the addresses no load may connect to unless an IP or
// CIDR pattern covers them.
func (p *hostPolicy) deniedAddr(a netip.Addr) error {
	a = a.Unmap()
	if p.covered(a) {
		return nil
	}
	for _, pfx := range deniedPrefixes {
		if pfx.Contains(a) {
			return fmt.Errorf("address %s is loopback, link-local or unspecified, which loads may only target when a --load-allow-host IP or CIDR pattern covers it", a)
		}
	}
	if p.apiServer.IsValid() && a == p.apiServer {
		return fmt.Errorf("address %s is the Kubernetes API server ($KUBERNETES_SERVICE_HOST), which loads may not target", a)
	}
	if a.IsMulticast() {
		return fmt.Errorf("address %s is multicast", a)
	}
	return nil
}

// preflight checks a load's target before it starts, so that a refused
// host is answered with a clear message; the dialer checks again at each
// connection, which a DNS answer that changes cannot get around. A name
// that does not resolve now is left to the dialer.
func (p *hostPolicy) preflight(ctx context.Context, host string) error {
	if err := p.allowHost(host); err != nil {
		return err
	}
	h := strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := p.lookup(ctx, h)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.deniedAddr(a); err != nil {
			return fmt.Errorf("host %q resolves to a refused address: %w", host, err)
		}
	}
	return nil
}

// control is a net.Dialer Control function: it runs after resolution, on
// the address actually connected to.
func (p *hostPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", errDeniedAddress, address)
	}
	if err := p.deniedAddr(ap.Addr()); err != nil {
		return fmt.Errorf("%w: %v", errDeniedAddress, err)
	}
	return nil
}
