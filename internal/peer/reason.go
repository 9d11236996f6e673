package peer

// CloseReason says why a peer connection ended. Every closed connection has
// exactly one; it is logged and counted per neighbour
// (herd_peer_link_down_total{peer,reason}).
type CloseReason uint8

// Close reasons, in the order their label values are listed by Reasons.
const (
	CloseShutdown    CloseReason = iota // this server is stopping
	CloseByNeighbour                    // the neighbour closed the connection
	CloseReadError                      // reading failed (reset, timeout on a dead link)
	CloseWriteError                     // writing failed or timed out (the neighbour does not read)
	CloseLineTooLong                    // the neighbour sent a line over the record limit
	CloseBadMAC                         // a message failed its authentication code: injected or altered on the wire
	CloseQueueFull                      // the neighbour's outbound queue filled: too slow, caught up on reconnect
	CloseNoSync                         // the neighbour sent no SYNC in time
	CloseDuplicate                      // the neighbour keeps another connection with us
	CloseReplaced                       // a newer connection from the same dialer replaced this one
	CloseRemoved                        // the link was removed from the config
	numReasons
)

var reasonNames = [numReasons]string{
	CloseShutdown:    "shutdown",
	CloseByNeighbour: "closed_by_neighbour",
	CloseReadError:   "read_error",
	CloseWriteError:  "write_error",
	CloseLineTooLong: "line_too_long",
	CloseBadMAC:      "bad_mac",
	CloseQueueFull:   "queue_full",
	CloseNoSync:      "no_sync",
	CloseDuplicate:   "duplicate",
	CloseReplaced:    "replaced",
	CloseRemoved:     "removed",
}

// String returns the reason's label value, e.g. "bad_mac".
func (r CloseReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons lists every close reason's label value.
func Reasons() []string { return reasonNames[:] }

// RefuseReason says why a peer handshake was refused; counted in
// herd_peer_handshake_refused_total{reason}.
type RefuseReason uint8

// Handshake refusal reasons.
const (
	RefuseMalformed   RefuseReason = iota // not a well-formed hello or reply
	RefuseVersion                         // another protocol version
	RefuseStranger                        // the claimed name is not a configured neighbour, or the hello is not for us
	RefuseCredential                      // a proof or certificate did not verify
	RefuseMode                            // the sides disagree on how to authenticate (TLS, secret, none)
	RefuseNotLoopback                     // protected mode: a peer from a non-loopback address
	RefuseBusy                            // too many handshakes in progress (per server or per source)
	RefuseTimeout                         // the hello or the handshake did not arrive in time
	numRefusals
)

var refuseNames = [numRefusals]string{
	RefuseMalformed:   "malformed",
	RefuseVersion:     "version",
	RefuseStranger:    "stranger",
	RefuseCredential:  "credential",
	RefuseMode:        "mode",
	RefuseNotLoopback: "not_loopback",
	RefuseBusy:        "busy",
	RefuseTimeout:     "timeout",
}

// String returns the refusal's label value, e.g. "credential".
func (r RefuseReason) String() string {
	if r < numRefusals {
		return refuseNames[r]
	}
	return "unknown"
}

// RefuseReasons lists every refusal's label value.
func RefuseReasons() []string { return refuseNames[:] }
