package sender

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// BlockedError is returned when a dial is refused because the resolved address is not a
// public unicast address.
type BlockedError struct {
	// Addr is the refused address.
	Addr netip.Addr
	// Reason names the range it falls in.
	Reason string
}

// Error says which address was refused and why.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("refused to connect to %s (%s address; the endpoint needs allow_private to reach it)", e.Addr, e.Reason)
}

var blockedPrefixes = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("100::/64"), "discard"},
}

// embedded IPv4 forms inside IPv6 addresses: the address is judged by its IPv4 part.
var embeddedV4 = []struct {
	p   netip.Prefix
	off int // byte offset of the IPv4 address
}{
	{netip.MustParsePrefix("::ffff:0:0/96"), 12},   // IPv4-mapped
	{netip.MustParsePrefix("::/96"), 12},           // IPv4-compatible (deprecated)
	{netip.MustParsePrefix("64:ff9b::/96"), 12},    // NAT64 well-known prefix
	{netip.MustParsePrefix("64:ff9b:1::/48"), 12},  // NAT64 local-use prefix
	{netip.MustParsePrefix("2002::/16"), 2},        // 6to4
	{netip.MustParsePrefix("::ffff:0:0:0/96"), 12}, // IPv4-translated (SIIT)
}

// Blocked returns why a connection to ip must be refused, or "" for a public unicast
// address. IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4, SIIT) are
// judged by their IPv4 part.
func Blocked(ip netip.Addr) string {
	ip = ip.WithZone("")
	if ip.Is6() {
		b := ip.As16()
		for _, e := range embeddedV4 {
			if e.p.Contains(ip) && !(e.p.Bits() == 96 && e.p.Addr().IsUnspecified() && (ip.IsUnspecified() || ip == netip.IPv6Loopback())) {
				v4 := netip.AddrFrom4([4]byte(b[e.off : e.off+4]))
				if r := Blocked(v4); r != "" {
					return r + " (embedded in " + ip.String() + ")"
				}
				return ""
			}
		}
	}
	for _, b := range blockedPrefixes {
		if b.p.Contains(ip) {
			return b.reason
		}
	}
	if ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast"
	}
	return ""
}

// guardControl is a net.Dialer Control function: it runs after DNS, on the exact address
// about to be dialed, so DNS rebinding cannot slip a private address past it.
func guardControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refused to dial %q: not an IP address", address)
	}
	if r := Blocked(ip); r != "" {
		return &BlockedError{Addr: ip, Reason: r}
	}
	return nil
}
