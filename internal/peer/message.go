package peer

import (
	"errors"
	"strconv"

	"herd/internal/protocol"
)

// Message kinds after the handshake.
const (
	msgAT        = iota + 1 // a record: AT <server> <diff> <client> <location> <time>, or a tombstone: DEL <server> <client> <time>
	msgSync                 // SYNC <epoch> <seq>: send me your changes after seq of epoch
	msgSynced               // SYNCED <epoch> <seq>: you now have my changes up to seq
	msgSeq                  // SEQ <seq>: you now have my changes up to seq (same epoch)
	msgPing                 // PING
	msgDuplicate            // DUPLICATE: the sender keeps another connection; this one closes
	msgOther                // a line of a later protocol version: ignored
)

type message struct {
	kind         int
	line, client []byte // AT or DEL: the line without surrounding white space, and its client id (aliasing the read buffer)
	time         protocol.Time
	epoch, seq   uint64
}

var errMessage = errors.New("malformed peer message")

// parseMessage decodes one line received from a neighbour.
func parseMessage(line []byte) (message, error) {
	word, rest := protocol.Cut(line)
	switch string(word) {
	case "AT", "DEL":
		line = protocol.TrimSpace(line)
		check := protocol.CheckAT
		if string(word) == "DEL" {
			check = protocol.CheckDEL
		}
		client, t, err := check(line)
		if err != nil {
			return message{}, err
		}
		return message{kind: msgAT, line: line, client: client, time: t}, nil
	case "SYNC", "SYNCED":
		e, rest := protocol.Cut(rest)
		s, rest := protocol.Cut(rest)
		if len(protocol.TrimSpace(rest)) != 0 {
			return message{}, errMessage
		}
		epoch, err1 := strconv.ParseUint(string(e), 10, 64)
		seq, err2 := strconv.ParseUint(string(s), 10, 64)
		if err1 != nil || err2 != nil {
			return message{}, errMessage
		}
		kind := msgSync
		if string(word) == "SYNCED" {
			kind = msgSynced
		}
		return message{kind: kind, epoch: epoch, seq: seq}, nil
	case "SEQ":
		s, rest := protocol.Cut(rest)
		seq, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil || len(protocol.TrimSpace(rest)) != 0 {
			return message{}, errMessage
		}
		return message{kind: msgSeq, seq: seq}, nil
	case "PING":
		return message{kind: msgPing}, nil
	case "DUPLICATE":
		return message{kind: msgDuplicate}, nil
	}
	if len(word) == 0 {
		return message{}, errMessage
	}
	return message{kind: msgOther}, nil
}
