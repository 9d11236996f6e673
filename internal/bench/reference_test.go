package bench

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func startReference(t *testing.T, o ReferenceOptions) *Reference {
	t.Helper()
	ref, err := StartReference(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	return ref
}

func dialTest(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

func TestReferenceReplies(t *testing.T) {
	ref := startReference(t, ReferenceOptions{Name: "Goloman", PlacesJSON: []byte("{\"results\":[],\"status\":\"OK\"}")})
	nc := dialTest(t, ref.Addr())
	// Pipelined: every line is sent before any reply is read.
	io.WriteString(nc, "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n"+
		"WHATSAT kiwi 10 5\r\n"+
		"HELLO there\n"+
		"IAMAT  lime\t+1+2 3 \n"+
		"IAMAT last +1+2 4")
	nc.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	want := "AT Goloman +0.000000000 kiwi +34.068930-118.445127 1621464827.959498503\n" +
		"AT Goloman +0.000000000 kiwi +34.068930-118.445127 1621464827.959498503\n{\"results\":[],\"status\":\"OK\"}\n\n" +
		"? HELLO there\n" +
		"AT Goloman +0.000000000 lime\t+1+2 3\n" +
		"AT Goloman +0.000000000 last +1+2 4\n"
	if string(got) != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestReferenceRepliesPassTheChecks(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	nc := dialTest(t, ref.Addr())
	r := bufio.NewReader(nc)
	io.WriteString(nc, "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
	reply, _, err := readReply(r, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIAMATReply(reply, "kiwi.cs.ucla.edu", "+34.068930-118.445127", []byte("1621464827.959498503")); err != nil {
		t.Error(err)
	}
	io.WriteString(nc, "WHATSAT kiwi.cs.ucla.edu 10 5\n")
	reply, _, err = readReply(r, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	status, err := CheckWHATSATReply(reply, "kiwi.cs.ucla.edu")
	if err != nil || status != "OK" {
		t.Errorf("status %q, error %v", status, err)
	}
	if n := strings.Count(string(reply), "\"name\""); n != 5 {
		t.Errorf("default places answer has %d results, want 5", n)
	}
}

func TestReferenceClosesOnLongLine(t *testing.T) {
	ref := startReference(t, ReferenceOptions{})
	nc := dialTest(t, ref.Addr())
	io.WriteString(nc, "IAMAT "+strings.Repeat("x", refLineMax)+"\n")
	got, _ := io.ReadAll(nc)
	if len(got) != 0 {
		t.Errorf("got %q, want the connection closed without a reply", got)
	}
}

func TestReferenceCloseEndsConnections(t *testing.T) {
	ref, err := StartReference(ReferenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nc := dialTest(t, ref.Addr())
	io.WriteString(nc, "IAMAT a +1+1 1\n")
	if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ref.Close() // must not wait for the idle connection
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}
}
