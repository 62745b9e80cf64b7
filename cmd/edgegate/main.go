// Command edgegate is the edge gateway: it bridges GPIO, serial and I2C
// relays and sensors to WebSocket subprotocols and serves a dashboard.
//
//	edgegate [--sim] [--config FILE] [--listen ADDR] [--data-dir DIR] [--log-level L] [--log-format F] [--insecure]
//	edgegate check-config FILE
//	edgegate version
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/cmd/internal/buildinfo"
	"github.com/edgegate/edgegate/cmd/internal/tokencmd"
	"github.com/edgegate/edgegate/configs"
	"github.com/edgegate/edgegate/drivers"
	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/auth"
	"github.com/edgegate/edgegate/gateway/config"
	"github.com/edgegate/edgegate/gateway/hardware"
)

// version and commit are set at build time with -ldflags
// "-X main.version=... -X main.commit=..." (scripts/package.sh); the commit
// otherwise comes from the toolchain's vcs.revision.
var version, commit = "dev", ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, buildinfo.Get(version, commit).Line("edgegate"))
			return 0
		case "check-config":
			return checkConfig(args[1:], stdout, stderr)
		case "token":
			return mintToken(args[1:], stdout, stderr)
		case "sim-board":
			return simBoard(args[1:], stdout, stderr)
		case "help", "-h", "--help":
			if len(args) == 2 && args[1] == "--man" { // for scripts/package.sh
				fmt.Fprint(stdout, manPage())
				return 0
			}
			usage(stdout)
			return 0
		}
	}
	return serve(args, stderr)
}

func usage(w io.Writer) { fmt.Fprint(w, usageText) }

// usageText is the --help text, and the man page edgegate.1 (manpage.go).
const usageText = `usage:
  edgegate [--sim] [--config FILE] [--listen ADDR] [--data-dir DIR] [--log-level debug|info|warn|error] [--log-format text|json] [--insecure] [--echo-endpoint]
  edgegate token --role viewer|operator --ttl 1h [--config FILE]   print a signed, time-limited token
  edgegate check-config FILE     validate a configuration file (exit 0, or 1 with file:line: field: problem)
  edgegate version
  edgegate sim-board [--relays 4] [--telemetry 5s] [--usb-relay]   run a simulated serial board on a pty (prints its path)

  --sim without --config runs the embedded demo configuration on simulated hardware.
  --echo-endpoint adds GET /echo, which echoes every message over the same WebSocket layer (for Autobahn and
    other RFC 6455/7692 conformance suites); off by default.
`

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: edgegate check-config FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d relays, %d sensors, %d devices)\n", args[0], len(cfg.Relays), len(cfg.Sensors), len(cfg.Devices))
	return 0
}

func mintToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgegate token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf tokencmd.Flags
	tf.Register(fs)
	file := fs.String("config", "edgegate.yaml", "configuration file holding auth.secret or auth.secret_file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The flags alone first; the longest --ttl is the configuration's.
	early := tf
	early.MaxTTL = math.MaxInt64
	if err := early.Check(); err != nil {
		fmt.Fprintln(stderr, "edgegate token:", err)
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	secret, err := auth.LoadSecret(cfg.Auth.Secret, cfg.Auth.SecretFile)
	if err == nil && secret == nil {
		err = fmt.Errorf("%s has no auth.secret or auth.secret_file to sign tokens with", *file)
	}
	if err != nil {
		fmt.Fprintln(stderr, "edgegate token:", err)
		return 1
	}
	if f := cfg.Auth.SecretFile; f != "" && auth.WorldReadable(f) {
		fmt.Fprintf(stderr, "edgegate token: warning: %s is readable by every user of this machine; make it private (chmod 600, or 640 with the gateway's group)\n", f)
	}
	tf.MaxTTL = time.Duration(cfg.Auth.MaxTokenTTL)
	if err := tf.Print(stdout, secret, time.Now()); err != nil {
		fmt.Fprintln(stderr, "edgegate token:", err)
		return 2
	}
	return 0
}

type flags struct {
	sim, insecure       bool
	echoEndpoint        bool
	configFile, listen  string
	dataDir             string
	logLevel, logFormat string
}

func serve(args []string, stderr io.Writer) int {
	var f flags
	fs := flag.NewFlagSet("edgegate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	fs.BoolVar(&f.sim, "sim", false, "run on simulated hardware (with no --config: the embedded demo configuration)")
	fs.StringVar(&f.configFile, "config", "", "configuration file (YAML)")
	fs.StringVar(&f.listen, "listen", "", "listen address, overrides gateway.listen (default 127.0.0.1:8080)")
	fs.StringVar(&f.dataDir, "data-dir", "edgegate-data", "directory for state that outlives a restart")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&f.insecure, "insecure", false, "allow listening beyond loopback with auth disabled")
	fs.BoolVar(&f.echoEndpoint, "echo-endpoint", false, "serve GET /echo, an echo service for WebSocket conformance suites (Autobahn)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edgegate: unexpected argument %q (subcommands: check-config, token, version, sim-board; see edgegate help)\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "edgegate:", err)
		return 2
	}

	setMemoryLimit(log)

	var cfg *config.Config
	switch {
	case f.configFile != "":
		cfg, err = config.Load(f.configFile)
	case f.sim:
		cfg, err = config.Parse(configs.SimName, configs.Sim)
	default:
		err = errors.New("no configuration: pass --config FILE, or --sim to run the demo on simulated hardware")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if f.listen != "" {
		cfg.Gateway.Listen = f.listen
	}
	if err := checkExposure(cfg, f.insecure); err != nil {
		fmt.Fprintln(stderr, "edgegate:", err)
		return 1
	}
	if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
		fmt.Fprintf(stderr, "edgegate: data dir: %v\n", err)
		return 1
	}

	opts := gateway.Options{Config: cfg, Version: version, Logger: log, DataDir: f.dataDir, EchoEndpoint: f.echoEndpoint}
	if cfg.Auth.Enabled && cfg.Auth.Secret == "" && cfg.Auth.SecretFile == "" {
		if opts.SessionSecret, err = sessionSecret(f.dataDir); err != nil {
			fmt.Fprintln(stderr, "edgegate:", err)
			return 1
		}
	}
	if f.sim {
		journal, err := os.OpenFile(filepath.Join(f.dataDir, "sim-gpio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			fmt.Fprintf(stderr, "edgegate: %v\n", err)
			return 1
		}
		defer journal.Close()
		hw := firmwaresim.NewHardware(journal)
		defer hw.Close()
		if err := hardware.Simulate(hw, cfg); err != nil {
			fmt.Fprintln(stderr, "edgegate:", err)
			return 1
		}
		if f.configFile == "" {
			hardware.RunDemo(hw, cfg) // the demo's door contact opens and closes by itself
		}
		opts.Buses = hw
		opts.Sim = firmwaresim.Handler(hw)
		log.Info("running on simulated hardware")
	} else {
		hb, err := drivers.OpenHost()
		if err != nil {
			fmt.Fprintln(stderr, "edgegate:", err)
			return 1
		}
		opts.Buses = hb
	}

	gw, err := gateway.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "edgegate:", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "edgegate: listen on %s: %v\n", cfg.Gateway.Listen, err)
		shutdown(gw, log)
		return 1
	}
	log.Info("edgegate serving", "version", version, "gateway", cfg.Gateway.ID, "url", gw.Scheme()+"://"+ln.Addr().String()+"/")
	base := gw.PublicURL()
	if base == "" {
		base = gw.Scheme() + "://" + publicHostPort(ln.Addr())
	}
	logSignIn := func(hup bool) {
		if u := gw.SignInURL(base); u != "" {
			log.Info("dashboard sign-in link (operator; works once, within 10 minutes; SIGHUP logs a fresh one): open it in a browser", "signin_url", u)
		} else if hup {
			log.Info("SIGHUP: auth is off, there is no sign-in link to renew")
		}
	}
	logSignIn(false)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
wait:
	for {
		select {
		case <-hup:
			logSignIn(true)
		case <-ctx.Done():
			log.Info("shutting down")
			break wait
		case err := <-served:
			if err != nil {
				log.Error("server stopped", "err", err)
				shutdown(gw, log)
				return 1
			}
			break wait
		}
	}
	shutdown(gw, log)
	<-served
	log.Info("stopped")
	return 0
}

func shutdown(gw *gateway.Gateway, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
}

// checkExposure refuses to serve beyond loopback without auth.
func checkExposure(cfg *config.Config, insecure bool) error {
	if cfg.Auth.Enabled || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Gateway.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %v", cfg.Gateway.Listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s with auth disabled: anyone on the network could switch the relays. "+
		"Enable auth in the config (auth.enabled: true with keys or a secret), listen on 127.0.0.1, or pass --insecure if the network is trusted", cfg.Gateway.Listen)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		// Exact timestamps: microseconds, UTC, so that events of a burst
		// (a pulse, an interlock) keep their order when read back.
		if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
			a.Value = slog.StringValue(a.Value.Time().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
		}
		return a
	}}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// publicHostPort is the listener's address as a browser elsewhere would
// use it: the host name in place of an unspecified address (0.0.0.0, ::).
func publicHostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// sessionSecret returns the key that signs browser sessions when the
// config has no auth secret, kept in the data dir so that sessions survive
// a restart (made on first use, readable by this user only).
func sessionSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "session.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("keep the browser session key in the data dir: %w", err)
	}
	return b, nil
}
