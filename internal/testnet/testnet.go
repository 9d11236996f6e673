// Package testnet gives tests loopback addresses for servers they start as
// separate processes, or must name before they listen.
package testnet

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Ports handed out are below Linux's default ephemeral range (32768 and
// up), so an outgoing connection of another test cannot take one between
// FreeAddr and the server's bind, as it can take a port the kernel picks
// for ":0".
const (
	lowPort  = 20000
	highPort = 32000
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowPort+rand.IntN(highPort-lowPort)))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port between 20000 and 32000 on 127.0.0.1")
	return ""
}
