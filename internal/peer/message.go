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
	word, rest := cut(line)
	switch string(word) {
	case "AT", "DEL":
		line = trimSpace(line)
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
		e, rest := cut(rest)
		s, rest := cut(rest)
		if len(trimSpace(rest)) != 0 {
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
		s, rest := cut(rest)
		seq, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil || len(trimSpace(rest)) != 0 {
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

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// cut returns the first space-separated word of b and the rest.
func cut(b []byte) (word, rest []byte) {
	b = trimSpace(b)
	for i, c := range b {
		if isSpace(c) {
			return b[:i], b[i:]
		}
	}
	return b, nil
}
