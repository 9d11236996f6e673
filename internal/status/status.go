// Package status serves a herd server's operator-facing HTTP endpoints: a live
// status page (the herd's topology, per-server counters and recent location
// updates), its JSON and server-sent-event feeds, a health check, and the
// Prometheus metrics handler supplied by the caller.
//
// The package does no bookkeeping of its own beyond the Recent ring: the
// caller describes the server with a func returning a State, and Handler turns
// that into HTTP. The page itself is static (HTML, CSS and vanilla JavaScript
// embedded from web/); it draws the topology from its own server's State and
// learns the other servers' state by polling their /api/state endpoints at the
// Metrics addresses listed in the topology.
package status

import (
	"time"

	"herd/internal/peer"
)

// Node is one server of the herd's configuration, as the status page draws it.
type Node struct {
	// Name is the server's name, unique in the herd.
	Name string `json:"name"`
	// Addr is the client-protocol address ("host:port").
	Addr string `json:"addr"`
	// Metrics is the HTTP address ("host:port") serving this package's
	// Handler for that server; empty when the server has none.
	Metrics string `json:"metrics"`
	// Neighbors are the names of the servers this one has a link with. Links
	// are symmetric; listing one on either side is enough.
	Neighbors []string `json:"neighbors"`
}

// Link is one peer link as seen from the reporting server.
type Link struct {
	// Peer is the neighbour's server name.
	Peer string `json:"peer"`
	// Up reports whether the link is currently connected.
	Up bool `json:"up"`
	// Queued is the number of messages waiting to be sent to the peer.
	Queued int `json:"queued"`
	// Reconnects counts how often the link has come back up after it had
	// been up.
	Reconnects int64 `json:"reconnects"`
	// Dropped counts messages dropped because the peer's queue was full.
	Dropped int64 `json:"dropped"`
	// SyncRecords counts records exchanged by catch-up on this link.
	SyncRecords int64 `json:"syncRecords"`
}

// LinkOf describes a peer link for the page.
func LinkOf(l peer.LinkState) Link {
	return Link{Peer: l.Peer, Up: l.Up, Queued: l.Queued, Reconnects: l.Reconnects, Dropped: l.Dropped, SyncRecords: l.SyncRecords}
}

// Update is one location change applied by the reporting server.
type Update struct {
	// Time is when the server applied the update.
	Time time.Time `json:"time"`
	// Client is the client id whose location changed.
	Client string `json:"client"`
	// Line is the stored AT line of the new location.
	Line string `json:"line"`
	// From is "client" when a client sent the IAMAT to this server, or the
	// name of the neighbour that flooded it here.
	From string `json:"from"`
}

// FromClient is the Update.From value of an update a client sent directly.
const FromClient = "client"

// State is what one server reports about itself on /api/state and /events.
type State struct {
	// Server is the reporting server's name.
	Server string `json:"server"`
	// Addr is its client-protocol address.
	Addr string `json:"addr"`
	// PeerAddr is its peer-protocol address.
	PeerAddr string `json:"peerAddr"`
	// Started is when the server started serving.
	Started time.Time `json:"started"`
	// Clients is the number of clients whose location the server knows.
	Clients int `json:"clients"`
	// Counters are named running totals and gauges. The page labels
	// "iamat", "whatsat", "invalid", "conns_open", "flood_in" and
	// "flood_out" and lists any other key under its own name.
	Counters map[string]float64 `json:"counters"`
	// Links are the server's peer links.
	Links []Link `json:"links"`
	// Recent are the latest location updates, newest first.
	Recent []Update `json:"recent"`
	// Herd is the whole configured topology, every server included.
	Herd []Node `json:"herd"`
}
