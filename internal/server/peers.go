package server

import (
	"bufio"
	"errors"
	"net"
	"time"

	"herd/internal/peer"
)

// handlePeer serves a connection to the dedicated peer listener: its first
// line must be a peer hello, or it is closed.
func (s *Server) handlePeer(nc net.Conn) {
	defer nc.Close()
	if s.o.Peers == nil || !s.addConn(nc) {
		return
	}
	defer s.removeConn(nc)
	r := bufio.NewReaderSize(nc, 64<<10)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	hello, err := r.ReadSlice('\n')
	if err != nil {
		s.log.Info("peer connection closed before its hello", "remote", nc.RemoteAddr().String(), "err", err.Error())
		return
	}
	nc.SetReadDeadline(time.Time{})
	if !peer.IsHello(hello) {
		s.log.Warn("not a peer hello on the peer port: closing", "remote", nc.RemoteAddr().String(), "line", string(trimEOL(hello)))
		return
	}
	err = s.o.Peers.Accept(nc, r, hello)
	var rej *peer.Rejected
	if err != nil && !errors.As(err, &rej) {
		s.log.Info("peer connection failed", "remote", nc.RemoteAddr().String(), "err", err.Error())
	}
}
