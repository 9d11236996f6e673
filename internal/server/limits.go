package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ipLimit bounds the client connections open from one source IP
// ([client] max_conns_per_ip). Connections to the client port that become
// peer links count too while they last, so a host running several servers
// that share their client ports needs room for its links (or peer_addr).
type ipLimit struct {
	max int // 0: no limit; immutable

	mu      sync.Mutex
	open    map[netip.Addr]int // guarded by mu: open connections by IP; no zero counts
	refused int                // guarded by mu: refusals since the last log line
	logged  time.Time          // guarded by mu: when a refusal was last logged
}

// refusalLogEvery is the least time between two log lines about
// connections refused by max_conns_per_ip.
const refusalLogEvery = 10 * time.Second

// addrIP is the IP of a connection's remote address; ok is false when it
// has none (a pipe in tests), which is never limited.
func addrIP(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// acquire takes a place for a connection from a, or reports that its IP
// already has max connections open. release must be called with the
// returned IP when an acquired connection ends.
func (l *ipLimit) acquire(a net.Addr) (ip netip.Addr, ok bool) {
	if l.max <= 0 {
		return netip.Addr{}, true
	}
	ip, has := addrIP(a)
	if !has {
		return netip.Addr{}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
		l.refused++
		return ip, false
	}
	l.open[ip]++
	return ip, true
}

func (l *ipLimit) release(ip netip.Addr) {
	if l.max <= 0 || !ip.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// logRefusal logs a refusal of ip, at most once every refusalLogEvery,
// with the number refused since the last line.
func (l *ipLimit) logRefusal(log *slog.Logger, ip netip.Addr) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.logged) < refusalLogEvery {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.logged = 0, now
	l.mu.Unlock()
	log.Warn("client connection refused: too many connections from one address (logged at most every 10s)",
		"ip", ip.String(), "max_conns_per_ip", l.max, "refused", n)
}

// fdReserve is how many file descriptors each server keeps for what is not
// a client connection: listeners, peer links, its log and data files,
// metrics and places requests.
const fdReserve = 128

// fitConns returns the client connections a server can hold: configured,
// lowered so that share servers of one process, each with fdReserve
// descriptors besides its clients, fit in limit descriptors. A limit of 0
// (unknown) lowers nothing; the result is at least 1.
func fitConns(configured int, limit uint64, share int) int {
	if limit == 0 || configured <= 0 {
		return configured
	}
	share = max(share, 1)
	per := limit / uint64(share)
	if per <= fdReserve {
		return 1
	}
	if fit := per - fdReserve; fit < uint64(configured) {
		return int(fit)
	}
	return configured
}
