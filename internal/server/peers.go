package server

import (
	"net"
)

// handlePeer serves a connection to the dedicated peer listener: the peer
// links run its handshake, under their bounds, and close it.
func (s *Server) handlePeer(nc net.Conn) {
	if s.o.Peers == nil || !s.addConn(nc) {
		nc.Close()
		return
	}
	defer s.removeConn(nc)
	s.o.Peers.ServeConn(nc, nil)
}
