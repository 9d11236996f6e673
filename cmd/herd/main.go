// Command herd runs a proxy herd: TCP servers that share their clients'
// locations and answer what is near them. See `herd help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad usage or config
)

// usageError marks errors that exit with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what a subcommand may touch of the outside world; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"up", "run every server of the herd in this process", runUp},
	{"serve", "run one server of the herd", runServe},
	{"client", "send lines to a server and print the replies", runClient},
	{"bench", "load a herd and measure throughput and latency", runBench},
	{"certs", "make the CA, keys and certificates for TLS between servers", runCerts},
	{"secret", "print a new random peer secret", runSecret},
	{"store", "check or repair a server's data directory", runStore},
	{"version", "print the module version, commit and peer protocol (also: herd --version)", runVersion},
	{"help", "show help for herd or a subcommand", nil},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(Main(ctx, e, os.Args[1:]))
}

// Main runs herd with args and returns the exit code.
func Main(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	if name == "--version" || name == "-version" {
		name = "version"
	}
	if name == "-h" || name == "-help" || name == "--help" {
		usage(e.stdout)
		return exitOK
	}
	if name == "help" {
		if len(rest) == 0 {
			usage(e.stdout)
			return exitOK
		}
		name, rest = rest[0], []string{"-h"}
	}
	for _, c := range commands {
		if c.name == name && c.run != nil {
			err := c.run(ctx, e, rest)
			return report(e, name, err)
		}
	}
	fmt.Fprintf(e.stderr, "herd: unknown command %q\n\n", name)
	usage(e.stderr)
	return exitUsage
}

func report(e *env, name string, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "herd %s: %v\n", name, err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "herd — a herd of TCP servers that share where their clients are.\n\nUsage:\n  herd <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `herd help <command>` or `herd <command> -h` for a command's flags.\n")
}
