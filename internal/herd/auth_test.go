package herd

import (
	"context"
	"strings"
	"testing"
	"time"

	"herd/internal/peer"
	"herd/internal/places"
)

func startWithSecret(t *testing.T, secret string) *Herd {
	t.Helper()
	h, err := Start(Options{Config: defaultConfig(t), Secrets: [][]byte{[]byte(secret)}, NewFinder: func(string) places.Finder { return &fakeFinder{} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func TestSecretLinksServers(t *testing.T) {
	h := startWithSecret(t, "0123456789abcdef-secret")
	at := strings.TrimSuffix(ask(t, h.Member("Hands").ClientAddr, "IAMAT sec +1+1 1"), "\n")
	waitFor(t, 5*time.Second, "Welsh to learn the update over authenticated links", func() bool {
		return known(h.Member("Welsh"), "sec") == at
	})
}

// TestClientCannotInjectWithSecret: a client that speaks the peer protocol
// on a client port without the secret is treated as a client.
func TestClientCannotInjectWithSecret(t *testing.T) {
	h := startWithSecret(t, "0123456789abcdef-secret")
	g := h.Member("Goloman")
	c := dial(t, g.ClientAddr)
	c.send("HERD-PEER 2 Hands Goloman 0123456789abcdef0123456789abcdef\n")
	if got := c.line(); !strings.HasPrefix(got, "HERD-PEER-OK 2 Goloman ") {
		t.Fatalf("challenge %q", got)
	}
	c.send("HERD-PEER-AUTH 00ff\n")
	if got := c.line(); got != "? HERD-PEER-AUTH 00ff\n" {
		t.Fatalf("bad proof answered %q", got)
	}
	c.send("AT Hands +0.000000000 victim +1+1 99999999999\n")
	if got := c.line(); got != "? AT Hands +0.000000000 victim +1+1 99999999999\n" {
		t.Fatalf("injected update answered %q", got)
	}
	c.send("IAMAT me +1+1 1\n")
	if got := c.line(); !strings.HasPrefix(got, "AT Goloman ") {
		t.Fatalf("the connection should go on as a client one, got %q", got)
	}
	if known(g, "victim") != "" {
		t.Fatal("a client changed a location through the peer protocol")
	}
	// A hello naming a stranger is rejected outright.
	c.send("HERD-PEER 2 Mallory Goloman 0123456789abcdef0123456789abcdef\n")
	if got := c.line(); got != "? HERD-PEER 2 Mallory Goloman 0123456789abcdef0123456789abcdef\n" {
		t.Fatalf("stranger's hello answered %q", got)
	}
}

func TestMismatchedSecretsDoNotLink(t *testing.T) {
	cfg := defaultConfig(t)
	a, err := Start(Options{Config: cfg, Names: []string{"Welsh"}, Secrets: [][]byte{[]byte("secret-number-one-1234")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	// Holiday, Welsh's only neighbour, runs in another "process" with another secret.
	cfg2 := defaultConfig(t)
	cfg2.Servers[3].Addr = a.Member("Welsh").ClientAddr
	b, err := Start(Options{Config: cfg2, Names: []string{"Holiday"}, Secrets: [][]byte{[]byte("secret-number-two-1234")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	// Holiday dials Welsh at once and fails authentication; the link stays down.
	at := strings.TrimSuffix(ask(t, b.Member("Holiday").ClientAddr, "IAMAT x +1+1 1"), "\n")
	if at == "" {
		t.Fatal("no reply")
	}
	var last peer.LinkState
	waitFor(t, 5*time.Second, "Holiday's dials to Welsh to be refused twice", func() bool {
		for _, l := range b.Member("Holiday").Peers.Links() {
			if l.Peer == "Welsh" {
				last = l
			}
		}
		return last.Refused >= 2
	})
	if last.Up || last.Reconnects != 0 {
		t.Fatalf("link state %+v: want never up", last)
	}
	if known(a.Member("Welsh"), "x") != "" {
		t.Fatal("an update crossed a link whose secrets differ")
	}
}
