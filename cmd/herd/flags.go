package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"herd/internal/config"
)

// errHelp is returned when -h was asked for; the help has been printed.
var errHelp = errors.New("help")

// newFlagSet returns a FlagSet whose usage text goes to w.
func newFlagSet(e *env, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("herd "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: herd %s [flags] %s\n\n%s\n\nFlags:\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; -h prints help to stdout and returns errHelp.
func parseFlags(e *env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return errHelp
		}
		if a == "--" {
			break
		}
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return nil
}

// parseFlagsOnly is parseFlags for a command that takes flags and no
// arguments.
func parseFlagsOnly(e *env, fs *flag.FlagSet, args []string) error {
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// defaultConfigFile is used when -config is not given and it exists.
const defaultConfigFile = "herd.toml"

// loadConfig reads -config, else ./herd.toml if present, else the built-in
// default herd.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err != nil {
			return config.Default(), nil
		}
		path = defaultConfigFile
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
