package server

import (
	"net"
	"net/netip"
	"testing"
)

func TestFitConns(t *testing.T) {
	tests := map[string]struct {
		configured int
		limit      uint64
		share      int
		want       int
	}{
		"room to spare":         {1000, 1 << 20, 1, 1000},
		"equal to the limit":    {20000, 20000, 1, 20000 - fdReserve},
		"five servers share":    {20000, 20000, 5, 4000 - fdReserve},
		"share 0 counts as one": {20000, 20000, 0, 20000 - fdReserve},
		"unknown limit":         {20000, 0, 5, 20000},
		"tiny limit":            {100, 64, 1, 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := fitConns(tt.configured, tt.limit, tt.share); got != tt.want {
				t.Fatalf("fitConns(%d, %d, %d) = %d, want %d", tt.configured, tt.limit, tt.share, got, tt.want)
			}
		})
	}
}

func TestIPLimit(t *testing.T) {
	l := ipLimit{max: 2, open: map[netip.Addr]int{}}
	a := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}
	b := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 2}
	v6 := &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 3} // the same IP, as IPv4-mapped IPv6
	other := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1}
	ipA, ok1 := l.acquire(a)
	_, ok2 := l.acquire(b)
	_, ok3 := l.acquire(v6)
	_, ok4 := l.acquire(other)
	if !ok1 || !ok2 || ok3 || !ok4 {
		t.Fatalf("acquire: %v %v %v %v, want true true false true", ok1, ok2, ok3, ok4)
	}
	l.release(ipA)
	if _, ok := l.acquire(v6); !ok {
		t.Fatal("no place after a release")
	}
	if l.refused != 1 || len(l.open) != 2 {
		t.Fatalf("refused %d, open %v", l.refused, l.open)
	}
	unlimited := ipLimit{}
	for range 10 {
		if _, ok := unlimited.acquire(a); !ok {
			t.Fatal("max 0 limited")
		}
	}
}
