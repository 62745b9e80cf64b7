// Command edgectl is a command-line client of an edgegate gateway: it lists
// and switches relays over relay-control.v1, streams sensor samples over
// sensor-stream.v1, and mints signed tokens. Run edgectl --help for the
// commands, flags and exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/buildinfo"
	"github.com/edgegate/edgegate/gateway/textutil"
)

// version and commit are set at build time with -ldflags
// "-X main.version=... -X main.commit=..." (scripts/package.sh); the commit
// otherwise comes from the toolchain's vcs.revision.
var version, commit = "dev", ""

// Exit codes that scripts can rely on.
const (
	exitOK          = 0   // the command did what it was asked
	exitGateway     = 1   // the gateway answered with an error (code and message printed)
	exitUsage       = 2   // the command line is wrong, or a local file cannot be used
	exitConnect     = 3   // cannot connect, the handshake was refused, or the connection was lost
	exitTimeout     = 4   // no answer within --timeout
	exitInterrupted = 130 // interrupted (Ctrl-C) before a one-shot command finished
)

const defaultURL = "ws://127.0.0.1:8080/ws"

const helpText = `edgectl: a command-line client of an edgegate gateway.

usage:
  edgectl [flags] list                       every relay: NAME STATE DRIVER CHANGED INTERLOCK
  edgectl [flags] get RELAY                  one relay
  edgectl [flags] set RELAY on|off           switch a relay (replies once the device confirmed it)
  edgectl [flags] toggle RELAY               switch a relay to the other state
  edgectl [flags] pulse RELAY DURATION       switch on for DURATION (e.g. 1500ms, 2s), then back off
  edgectl [flags] watch [PATTERN...]         stream sensor samples (patterns like room.* ; default *)
        --count N     stop after N samples
        --for D       stop after D (e.g. 30s)
        --max-hz F    at most F samples per second per sensor (0: every sample)
        --binary      receive 32-byte binary records instead of JSON (same output)
  edgectl token --role viewer|operator [--ttl 1h] [--secret-file FILE]
                                             mint a signed token locally, like 'edgegate token'
                                             (FILE holds the gateway's auth.secret_file;
                                             default /etc/edgegate/secret.key)
  edgectl version

flags (before or after the command):
  --url URL         the gateway's WebSocket URL (default ws://127.0.0.1:8080/ws, or $EDGEGATE_URL);
                    wss:// for a gateway with TLS; a URL without a path gets /ws
  --token T         API key or signed token, sent as Authorization: Bearer (default $EDGEGATE_TOKEN)
  --json            machine output: one JSON object per line (list: one relay per line;
                    get/set/toggle/pulse: the gateway's reply; watch: every sample and event)
  --timeout D       how long to wait for the connection and for each reply (default 5s)
  --ca FILE         trust the CA certificate(s) in FILE (PEM) for wss://
  --insecure-skip-verify
                    do not check the gateway's TLS certificate (testing only)

exit codes:
  0    ok
  1    the gateway answered with an error; its code and message are printed
       (e.g. unknown_relay, forbidden, device_error, rate_limited; for watch
       also: no sensor matches the patterns)
  2    usage error: wrong command line, or a local file (--ca, --secret-file) cannot be used
  3    cannot connect, the handshake was refused (the HTTP status and body are printed,
       e.g. 401: check --token), or the connection was lost
  4    timeout: no connection or no reply within --timeout
  130  interrupted (Ctrl-C) before a one-shot command finished; watch ends with 0 on Ctrl-C

environment:
  EDGEGATE_URL, EDGEGATE_TOKEN   defaults of --url and --token
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the global flags.
type options struct {
	url, token  string
	json        bool
	timeout     time.Duration
	caFile      string
	insecureTLS bool
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", o.url, "the gateway's WebSocket URL")
	fs.StringVar(&o.token, "token", o.token, "API key or signed token")
	fs.BoolVar(&o.json, "json", o.json, "machine output: JSON lines")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the connection and each reply")
	fs.StringVar(&o.caFile, "ca", o.caFile, "CA certificate file (PEM) for wss://")
	fs.BoolVar(&o.insecureTLS, "insecure-skip-verify", o.insecureTLS, "do not check the gateway's TLS certificate")
}

// usageError is a wrong command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitError carries an exit code and the message to print (may be empty
// when the message was printed already).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run is edgectl with its arguments, environment and output; it returns the
// exit code. ctx ends a watch (Ctrl-C) and aborts a one-shot command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, helpText)
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "edgectl: %s\nRun 'edgectl --help' for the commands and flags.\n", ue.msg)
		return exitUsage
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "edgectl: %s\n", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "edgectl: %v\n", err)
	return exitGateway
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := options{url: defaultURL, timeout: 5 * time.Second}
	if v := getenv("EDGEGATE_URL"); v != "" {
		o.url = v
	}
	o.token = getenv("EDGEGATE_TOKEN")

	// Global flags before the command.
	fs := newFlagSet("edgectl")
	o.register(fs)
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *help {
		fmt.Fprint(stdout, helpText)
		return nil
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, helpText)
		return &exitError{code: exitUsage}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]

	switch cmd {
	case "help":
		if len(rest) == 1 && rest[0] == "--man" { // for scripts/package.sh
			fmt.Fprint(stdout, manPage())
			return nil
		}
		fmt.Fprint(stdout, helpText)
		return nil
	case "version":
		fmt.Fprintln(stdout, buildinfo.Get(version, commit).Line("edgectl"))
		return nil
	case "token":
		return cmdToken(rest, stdout)
	case "list", "get", "set", "toggle", "pulse":
		pos, err := parseInterleaved(newFlagSet("edgectl "+cmd), &o, rest, nil)
		if err != nil {
			return err
		}
		return cmdRelay(ctx, &o, cmd, pos, stdout, stderr)
	case "watch":
		var w watchOptions
		pos, err := parseInterleaved(newFlagSet("edgectl watch"), &o, rest, w.register)
		if err != nil {
			return err
		}
		w.patterns = pos
		return cmdWatch(ctx, &o, &w, stdout, stderr)
	}
	hint := ""
	if c := closestCommand(cmd); c != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", c)
	}
	return usagef("unknown command %q%s; commands: list, get, set, toggle, pulse, watch, token, version", cmd, hint)
}

// errHelp asks for the help text (-h or --help after the command).
var errHelp = errors.New("help")

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by run
	return fs
}

// parseInterleaved parses the global flags (and extra, the command's own)
// anywhere among the command's arguments, so that "edgectl set pump on
// --json" works as well as "edgectl --json set pump on". Everything after
// "--" is positional.
func parseInterleaved(fs *flag.FlagSet, o *options, args []string, extra func(*flag.FlagSet)) ([]string, error) {
	o.register(fs)
	if extra != nil {
		extra(fs)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func closestCommand(s string) string {
	s = strings.ToLower(s)
	for _, c := range []string{"list", "get", "set", "toggle", "pulse", "watch", "token", "version"} {
		if strings.HasPrefix(c, s) || strings.HasPrefix(s, c) || textutil.EditDistance(s, c) <= 1 {
			return c
		}
	}
	switch s {
	case "ls":
		return "list"
	case "on", "off", "switch":
		return "set"
	case "subscribe", "stream", "tail":
		return "watch"
	}
	return ""
}
