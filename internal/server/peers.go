package server

import (
	"net"
)

// handlePeer serves a connection to the dedicated peer listener: the peer
// links run its handshake, under their bounds, and close it.
// Once its handshake succeeds, the connection belongs to the peer links:
// Shutdown neither waits for nor touches it.
func (s *Server) handlePeer(nc net.Conn, handedOff func()) {
	if s.o.Peers == nil || !s.addConn(nc) {
		nc.Close()
		return
	}
	defer s.removeConn(nc)
	s.o.Peers.ServeConn(nc, nil, handedOff)
}
