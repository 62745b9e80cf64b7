package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	firmwaresim "github.com/edgegate/edgegate/firmware-sim"
)

// simBoard runs a simulated serial board (or an LCUS USB relay module) on a
// pseudo-terminal until SIGINT or SIGTERM, for manual tests of the
// serial-board and usb-relay drivers, or of any serial tool:
//
//	edgegate sim-board [--relays 4] [--telemetry 5s] [--usb-relay]
//
// It prints the path to open (a stable symlink to the pty) on the first line
// of stdout. SIGUSR1 presses the board's button of relay 1; SIGUSR2 reboots
// the board.
func simBoard(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgegate sim-board", flag.ContinueOnError)
	fs.SetOutput(stderr)
	relays := fs.Int("relays", 4, "relay channels of the board (1 to 64)")
	telemetry := fs.Duration("telemetry", 5*time.Second, "period of the board's telemetry lines (0: none)")
	usbRelay := fs.Bool("usb-relay", false, "simulate an LCUS USB relay module (8 channels) instead of a board")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edgegate sim-board: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *relays < 1 || *relays > 64 {
		fmt.Fprintln(stderr, "edgegate sim-board: --relays must be from 1 to 64")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *usbRelay {
		m, err := firmwaresim.NewLCUS(firmwaresim.LCUSOptions{})
		if err != nil {
			fmt.Fprintln(stderr, "edgegate sim-board:", err)
			return 1
		}
		defer m.Close()
		fmt.Fprintln(stdout, m.Path())
		fmt.Fprintln(stderr, "simulated LCUS USB relay module (8 channels, 9600 baud); Ctrl-C to stop")
		<-ctx.Done()
		fmt.Fprintf(stderr, "frames received: %d; relays: %v\n", len(m.Frames()), m.Relays())
		return 0
	}

	tele := *telemetry
	if tele <= 0 {
		tele = -1
	}
	b, err := firmwaresim.NewBoard(firmwaresim.BoardOptions{Relays: *relays, Telemetry: tele})
	if err != nil {
		fmt.Fprintln(stderr, "edgegate sim-board:", err)
		return 1
	}
	defer b.Close()
	fmt.Fprintln(stdout, b.Path())
	fmt.Fprintf(stderr, "simulated serial board (%d relays) on %s; kill -USR1 %d presses button 1, kill -USR2 %d reboots it; Ctrl-C to stop\n",
		*relays, b.PTY(), os.Getpid(), os.Getpid())
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(usr)
	for {
		select {
		case <-ctx.Done():
			return 0
		case s := <-usr:
			if s == syscall.SIGUSR1 {
				b.Press(1)
				fmt.Fprintf(stderr, "button 1 pressed; relays %v\n", b.Relays())
			} else {
				b.Reboot()
				fmt.Fprintln(stderr, "rebooted")
			}
		}
	}
}
