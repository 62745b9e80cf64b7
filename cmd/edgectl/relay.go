package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgegate/edgegate/protocol"
)

// relayInfo is a relay object of hello and list.
type relayInfo struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Driver     string `json:"driver"`
	ChangedAt  int64  `json:"changed_at"`
	Interlock  string `json:"interlock"`
	MaxPulseMS int64  `json:"max_pulse_ms"`
}

// relayRequest checks a relay command's arguments (before connecting) and
// returns its request.
func relayRequest(cmd string, args []string) (map[string]any, error) {
	want := map[string]int{"list": 0, "get": 1, "toggle": 1, "set": 2, "pulse": 2}[cmd]
	if len(args) != want {
		return nil, usagef("%s", relayUsage(cmd, len(args)))
	}
	req := map[string]any{"op": cmd}
	if want > 0 {
		if args[0] == "" {
			return nil, usagef("the relay name is empty; 'edgectl list' shows the relays")
		}
		req["relay"] = args[0]
	}
	switch cmd {
	case "set":
		st := strings.ToLower(args[1])
		if _, ok := protocol.ParseState(st); !ok {
			return nil, usagef("set %s %s: the state must be on or off", args[0], args[1])
		}
		req["state"] = st
	case "pulse":
		ms, err := pulseMS(args[1])
		if err != nil {
			return nil, usagef("pulse %s %s: %v", args[0], args[1], err)
		}
		req["ms"] = ms
	}
	return req, nil
}

func relayUsage(cmd string, got int) string {
	forms := map[string]string{
		"list":   "edgectl list",
		"get":    "edgectl get RELAY",
		"toggle": "edgectl toggle RELAY",
		"set":    "edgectl set RELAY on|off",
		"pulse":  "edgectl pulse RELAY DURATION   (e.g. edgectl pulse door 1500ms)",
	}
	return fmt.Sprintf("%s: wrong number of arguments (%d); usage: %s", cmd, got, forms[cmd])
}

// pulseMS reads a pulse length such as 1500ms or 2s as whole milliseconds.
func pulseMS(s string) (int64, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.Trim(s, "0123456789") == "" && s != "" {
			return 0, fmt.Errorf("give the length with its unit, e.g. %sms or %ss", s, s)
		}
		return 0, fmt.Errorf("%q is not a duration; write e.g. 1500ms or 2s", s)
	}
	if d < time.Millisecond {
		return 0, errors.New("the pulse must last at least 1ms")
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%v is not a whole number of milliseconds", d)
	}
	return d.Milliseconds(), nil
}

func cmdRelay(ctx context.Context, o *options, cmd string, args []string, stdout, stderr io.Writer) error {
	req, err := relayRequest(cmd, args)
	if err != nil {
		return err
	}
	c, err := dial(ctx, o, protocol.RelayControlV1, dialOptions{})
	if err != nil {
		return err
	}
	defer c.close()
	var hello struct {
		Role   string      `json:"role"`
		Relays []relayInfo `json:"relays"`
	}
	json.Unmarshal(c.hello, &hello) // checked to be JSON by dial; fields may be missing

	rep, err := c.call(req, nil)
	if err != nil {
		return relayError(o, err, hello.Relays, hello.Role, stdout)
	}
	switch cmd {
	case "list":
		relays := make([]relayInfo, len(rep.Relays))
		for i, raw := range rep.Relays {
			if err := json.Unmarshal(raw, &relays[i]); err != nil {
				return &exitError{exitGateway, fmt.Sprintf("the gateway sent a relay that edgectl cannot read: %s", raw)}
			}
			if o.json {
				fmt.Fprintf(stdout, "%s\n", raw)
			}
		}
		if !o.json {
			printRelays(stdout, relays)
		}
		return nil
	case "get":
		if o.json {
			fmt.Fprintf(stdout, "%s\n", rep.raw)
			return nil
		}
		r := relayInfo{Name: rep.Relay, State: rep.State, ChangedAt: rep.ChangedAt}
		for _, h := range hello.Relays {
			if h.Name == rep.Relay {
				r.Driver, r.Interlock = h.Driver, h.Interlock
			}
		}
		printRelays(stdout, []relayInfo{r})
		return nil
	}
	if o.json {
		fmt.Fprintf(stdout, "%s\n", rep.raw)
		return nil
	}
	if cmd == "pulse" {
		ms := req["ms"].(int64)
		fmt.Fprintf(stdout, "%s: %s for %v, then off\n", rep.Relay, rep.State, time.Duration(ms)*time.Millisecond)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %s\n", rep.Relay, rep.State)
	return nil
}

// relayError explains an error reply (exit 1) or passes other errors on.
func relayError(o *options, err error, relays []relayInfo, role string, stdout io.Writer) error {
	var ge *gatewayError
	if !errors.As(err, &ge) {
		return err
	}
	if o.json {
		fmt.Fprintf(stdout, "%s\n", ge.raw)
	}
	msg := fmt.Sprintf("the gateway refused: %s: %s", ge.code, ge.message)
	switch ge.code {
	case protocol.CodeUnknownRelay:
		names := make([]string, len(relays))
		for i, r := range relays {
			names[i] = r.Name
		}
		if len(names) > 0 {
			msg += "\nThe gateway's relays: " + strings.Join(names, ", ")
		} else {
			msg += "\nThis gateway has no relays configured."
		}
	case protocol.CodeForbidden:
		msg += fmt.Sprintf("\nThis connection has the %s role; switching relays needs an operator: use an operator API key, or a token from 'edgectl token --role operator'.", role)
	case protocol.CodeDeviceError:
		msg += "\nThe relay's hardware did not confirm the change; its state is unchanged. Check the wiring and the device in /healthz and the gateway's log."
	case protocol.CodeRateLimited:
		msg += "\nToo many requests on this connection; wait a moment and retry."
	case protocol.CodeBusy:
		msg += "\nThe relay is busy (e.g. a pulse is running); retry shortly."
	}
	return &exitError{exitGateway, msg}
}

func printRelays(w io.Writer, relays []relayInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tDRIVER\tCHANGED\tINTERLOCK")
	for _, r := range relays {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.State, dash(r.Driver), changed(r.ChangedAt), dash(r.Interlock))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// changed formats a changed_at (Unix ms) in local time.
func changed(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}
