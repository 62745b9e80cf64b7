package firmwaresim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// This file simulates the kernel's w1 sysfs tree with DS18B20 probes: a
// directory per probe holding a w1_slave file as the w1_therm driver writes
// it (the 9 scratchpad bytes with their Dallas CRC-8 and the kernel's
// verdict, then t= in millidegrees). Faults: crc (the verdict is NO),
// missing (the probe's directory vanishes), 85 (the power-on value).

// W1Tree is a simulated /sys/bus/w1/devices.
type W1Tree struct {
	root string

	mu     sync.Mutex
	probes map[string]*w1Probe
}

type w1Probe struct {
	temp  float64
	fault string // "", "crc", "missing", "85"
}

// NewW1Tree makes an empty tree in a temporary directory.
func NewW1Tree() (*W1Tree, error) {
	dir, err := os.MkdirTemp("", "edgegate-w1-")
	if err != nil {
		return nil, err
	}
	return &W1Tree{root: dir, probes: map[string]*w1Probe{}}, nil
}

// Root is the directory to read in place of /sys/bus/w1/devices.
func (w *W1Tree) Root() string { return w.root }

// Close removes the tree.
func (w *W1Tree) Close() { os.RemoveAll(w.root) }

// Add puts a probe at 20 °C on the bus (a probe already there is kept).
func (w *W1Tree) Add(id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.probes[id]; ok {
		return nil
	}
	if id == "" || strings.ContainsAny(id, "/.") {
		return fmt.Errorf("bad 1-wire id %q", id)
	}
	p := &w1Probe{temp: 20}
	w.probes[id] = p
	return w.writeLocked(id, p)
}

// Set pins a probe's temperature (°C, rounded to the probe's 1/16 °C).
func (w *W1Tree) Set(id string, temp float64) error {
	return w.change(id, func(p *w1Probe) error {
		if temp < -55 || temp > 125 || math.IsNaN(temp) {
			return fmt.Errorf("%v °C is outside a DS18B20's range (-55 to 125)", temp)
		}
		p.temp = temp
		return nil
	})
}

// SetFault injects crc, missing or 85, or clears with none.
func (w *W1Tree) SetFault(id, fault string) error {
	return w.change(id, func(p *w1Probe) error {
		switch fault {
		case "none":
			p.fault = ""
		case "crc", "missing", "85":
			p.fault = fault
		default:
			return fmt.Errorf("unknown fault %q: want crc, missing, 85 or none", fault)
		}
		return nil
	})
}

func (w *W1Tree) change(id string, f func(*w1Probe) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.probes[id]
	if !ok {
		return errNoProbe
	}
	if err := f(p); err != nil {
		return err
	}
	return w.writeLocked(id, p)
}

var errNoProbe = fmt.Errorf("no such probe")

// dallasCRC is the 1-wire CRC-8 (polynomial x^8+x^5+x^4+1, reflected 0x8C).
func dallasCRC(b []byte) byte {
	var crc byte
	for _, x := range b {
		for i := 0; i < 8; i++ {
			mix := (crc ^ x) & 1
			crc >>= 1
			if mix != 0 {
				crc ^= 0x8c
			}
			x >>= 1
		}
	}
	return crc
}

// writeLocked rewrites the probe's w1_slave (atomically: a reader never
// sees half a file).
func (w *W1Tree) writeLocked(id string, p *w1Probe) error {
	dir := filepath.Join(w.root, id)
	if p.fault == "missing" {
		return os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	temp := p.temp
	if p.fault == "85" {
		temp = 85
	}
	raw := int16(math.Round(temp * 16))
	pad := []byte{byte(raw), byte(uint16(raw) >> 8), 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10}
	pad = append(pad, dallasCRC(pad))
	hex := make([]string, len(pad))
	for i, b := range pad {
		hex[i] = fmt.Sprintf("%02x", b)
	}
	verdict := "YES"
	if p.fault == "crc" {
		verdict = "NO"
		pad[8] ^= 0xff // what the kernel saw did not match
	}
	h := strings.Join(hex, " ")
	body := fmt.Sprintf("%s : crc=%02x %s\n%s t=%d\n", h, pad[8], verdict, h, int(raw)*1000/16)
	tmp := filepath.Join(dir, ".w1_slave.tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "w1_slave"))
}

// w1ProbeView is a probe in GET /sim/w1.
type w1ProbeView struct {
	ID          string  `json:"id"`
	Temperature float64 `json:"temperature"`
	Fault       string  `json:"fault,omitempty"`
}

func (w *W1Tree) view() []w1ProbeView {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []w1ProbeView{}
	for id, p := range w.probes {
		out = append(out, w1ProbeView{ID: id, Temperature: p.temp, Fault: p.fault})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// W1 returns the simulated w1 tree, creating it on first use.
func (h *Hardware) W1() (*W1Tree, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w1 != nil {
		return h.w1, nil
	}
	w, err := NewW1Tree()
	if err != nil {
		return nil, err
	}
	h.w1 = w
	h.closers = append(h.closers, w.Close)
	return w, nil
}

// W1Root is the directory the ds18b20 driver reads in place of
// /sys/bus/w1/devices ("" when no probe is simulated).
func (h *Hardware) W1Root() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w1 == nil {
		return ""
	}
	return h.w1.root
}
