package bench

import (
	"strings"
	"testing"
)

func TestCheckIAMATReply(t *testing.T) {
	const client, loc, tm = "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1621464827.959498503"
	good := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
	tests := []struct {
		name, reply string
		want        string // "" for a good reply, else part of the error
	}{
		{"good", good, ""},
		{"negative diff", strings.Replace(good, "+0.263873386", "-12.000000001", 1), ""},
		{"tabs between fields", strings.ReplaceAll(good, " ", "\t"), ""},
		{"CR LF", strings.TrimSuffix(good, "\n") + "\r\n", ""},
		{"no newline", strings.TrimSuffix(good, "\n"), "not a complete line"},
		{"two lines", good + good, "more than one line"},
		{"rejected", "? IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n", "rejected"},
		{"not AT", "OK Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n", "want \"AT"},
		{"missing field", "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127\n", "want \"AT"},
		{"extra field", strings.TrimSuffix(good, "\n") + " x\n", "want \"AT"},
		{"diff without sign", strings.Replace(good, "+0.263873386", "0.263873386", 1), "time difference"},
		{"diff with 6 digits", strings.Replace(good, "+0.263873386", "+0.263873", 1), "time difference"},
		{"diff not a number", strings.Replace(good, "+0.263873386", "+a.263873386", 1), "time difference"},
		{"other client", strings.Replace(good, "kiwi.cs.ucla.edu", "lime.cs.ucla.edu", 1), "client"},
		{"other location", strings.Replace(good, "+34.068930-118.445127", "+34.068930-118.445128", 1), "location"},
		{"other time", strings.Replace(good, "1621464827.959498503", "1621464827.959498500", 1), "time"},
		{"time reformatted", strings.Replace(good, "1621464827.959498503", "1621464827.9594985030", 1), "time"},
		{"empty", "", "not a complete line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckIAMATReply([]byte(tc.reply), client, loc, []byte(tm))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("got nil, want an error about %s", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %v, want it to mention %s", err, tc.want)
			}
		})
	}
}

func TestCheckWHATSATReply(t *testing.T) {
	const at = "AT Hands -0.000012000 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
	json := "{\n   \"html_attributions\" : [],\n   \"results\" : [\n      {\n         \"name\" : \"x\"\n      }\n   ],\n   \"status\" : \"OK\"\n}"
	tests := []struct {
		name, reply string
		want        string // "" for a good reply, else part of the error
		status      string
	}{
		{"good", at + json + "\n\n", "", "OK"},
		{"error status", at + "{\"error_message\":\"no\",\"html_attributions\":[],\"results\":[],\"status\":\"REQUEST_DENIED\"}\n\n", "", "REQUEST_DENIED"},
		{"integer time", strings.Replace(at, "1621464827.959498503", "1621464827", 1) + json + "\n\n", "", "OK"},
		{"no blank line", at + json + "\n", "empty line", ""},
		{"three newlines", at + json + "\n\n\n", "more than one empty line", ""},
		{"blank line inside", at + strings.Replace(json, "\n", "\n\n", 1) + "\n\n", "empty line inside", ""},
		{"bad JSON", at + strings.Replace(json, "]", "", 1) + "\n\n", "bad JSON", ""},
		{"JSON array", at + "[1]\n\n", "no JSON object", ""},
		{"no status", at + "{\"results\":[]}\n\n", "status", ""},
		{"no results", at + "{\"status\":\"OK\"}\n\n", "results", ""},
		{"results not an array", at + "{\"results\":{},\"status\":\"OK\"}\n\n", "results", ""},
		{"no JSON", at + "\n", "empty line", ""},
		{"other client", strings.Replace(at, "kiwi", "lime", 1) + json + "\n\n", "client", ""},
		{"bad location", strings.Replace(at, "+34.068930-118.445127", "34.068930,-118.445127", 1) + json + "\n\n", "location", ""},
		{"bad time", strings.Replace(at, "1621464827.959498503", "1.6e9", 1) + json + "\n\n", "time", ""},
		{"rejected", "? WHATSAT kiwi.cs.ucla.edu 10 5\n", "rejected", ""},
		{"only the AT line", at, "empty line", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, err := CheckWHATSATReply([]byte(tc.reply), "kiwi.cs.ucla.edu")
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.want == "" && status != tc.status:
				t.Errorf("status %q, want %q", status, tc.status)
			case tc.want != "" && err == nil:
				t.Errorf("got nil, want an error about %s", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %v, want it to mention %s", err, tc.want)
			}
		})
	}
}

func TestCheckRejectReply(t *testing.T) {
	line := "WHATSAT kiwi 10 5"
	if err := CheckRejectReply([]byte("? WHATSAT kiwi 10 5\n"), line); err != nil {
		t.Errorf("good reply: %v", err)
	}
	for _, bad := range []string{"? WHATSAT kiwi 10 5", "?  WHATSAT kiwi 10 5\n", "? WHATSAT kiwi 10 6\n", "AT x\n", ""} {
		if CheckRejectReply([]byte(bad), line) == nil {
			t.Errorf("%q: got nil, want an error", bad)
		}
	}
}

func TestWrongReplyQuotesAtMostMaxShown(t *testing.T) {
	err := CheckIAMATReply([]byte(strings.Repeat("x", 1000)+"\n"), "c", "+1+1", []byte("1"))
	if err == nil || len(err.Error()) > maxShown+200 {
		t.Fatalf("got %v", err)
	}
}

func TestGeneratorTimesIncrease(t *testing.T) {
	o := (&Options{Conns: 2, Clients: 5, Targets: []string{"x:1"}}).withDefaults()
	g := newGenerator(&o, 1)
	if len(g.clients) != 2 { // clients 1 and 3 of 0..4
		t.Fatalf("worker 1 of 2 owns %v, want 2 clients", g.clients)
	}
	g.now = func() int64 { return 1621464827_959498503 } // a stopped clock
	var req request
	var prev string
	for i := range 3 {
		line := string(g.nextLine(nil, &req))
		tm := string(req.timeField())
		if tm <= prev {
			t.Errorf("time %s after %s does not increase", tm, prev)
		}
		prev = tm
		want := "IAMAT " + req.client + " " + req.loc + " " + tm + "\n"
		if line != want {
			t.Errorf("line %d = %q, want %q", i, line, want)
		}
	}
	if prev != "1621464827.959498505" {
		t.Errorf("last time %s, want 1621464827.959498505", prev)
	}
}
