package firmwaresim

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Change is one level change of a pin, as driven by software (Out) or by the
// outside world (Drive).
type Change struct {
	At     time.Time
	Level  gpio.Level
	Driven bool // true: written by Out; false: an external input level
}

// GPIO is a simulated GPIO controller: a set of named pins created on first
// use. Every level driven on an output is appended to the journal, if any, as
// a line "<unix-nanos> <pin> out <high|low>" so that a test can check the
// levels a whole process drove, start to stop, after it has exited.
type GPIO struct {
	mu      sync.Mutex
	pins    map[string]*Pin
	journal io.Writer
	line    []byte // the journal line being written, guarded by mu
}

// NewGPIO returns a controller that writes its journal to w (nil: none).
func NewGPIO(journal io.Writer) *GPIO {
	return &GPIO{pins: map[string]*Pin{}, journal: journal}
}

// pinKey is a pin's name as the simulator keys it: upper case, and a bare
// number is the GPIO of that number, as for the configuration loader ("17"
// is GPIO17).
func pinKey(name string) string {
	key := strings.ToUpper(strings.TrimSpace(name))
	if _, err := strconv.Atoi(key); err == nil {
		key = "GPIO" + strings.TrimLeft(key, "0")
		if key == "GPIO" {
			key = "GPIO0"
		}
	}
	return key
}

// Lookup returns the pin with the given name if it exists (a driver or the
// simulation made it), without creating it.
func (g *GPIO) Lookup(name string) (*Pin, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pins[pinKey(name)]
	return p, ok
}

// Pin returns the pin with the given name (case-insensitive; see pinKey),
// creating it.
func (g *GPIO) Pin(name string) *Pin {
	key := pinKey(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pins[key]
	if !ok {
		p = &Pin{name: key, number: len(g.pins), gpio: g, edges: make(chan struct{}, 1)}
		g.pins[key] = p
	}
	return p
}

// Pins returns all pins created so far, sorted by name.
func (g *GPIO) Pins() []*Pin {
	g.mu.Lock()
	defer g.mu.Unlock()
	ps := make([]*Pin, 0, len(g.pins))
	for _, p := range g.pins {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}

func (g *GPIO) logDriven(p *Pin, at time.Time, l gpio.Level) {
	if g.journal == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// One line, one write (tests read the journal while the process runs),
	// formatted into a reused buffer.
	b := strconv.AppendInt(g.line[:0], at.UnixNano(), 10)
	b = append(b, ' ')
	b = append(b, p.name...)
	b = append(b, " out "...)
	b = append(b, levelWord(l)...)
	b = append(b, '\n')
	g.journal.Write(b)
	g.line = b
}

func levelWord(l gpio.Level) string {
	if l {
		return "high"
	}
	return "low"
}

// Pin is a simulated GPIO pin. It implements gpio.PinIO.
type Pin struct {
	name   string
	number int
	gpio   *GPIO

	mu      sync.Mutex
	output  bool
	level   gpio.Level // what Read returns when not stuck
	pull    gpio.Pull
	edge    gpio.Edge
	stuck   *gpio.Level
	failOut error
	history []Change // the latest maxPinHistory changes
	// external is set once the outside world has driven the pin (Drive).
	external bool
	edges    chan struct{}
}

var _ gpio.PinIO = (*Pin)(nil)

func (p *Pin) String() string         { return p.name }
func (p *Pin) Name() string           { return p.name }
func (p *Pin) Number() int            { return p.number }
func (p *Pin) Halt() error            { return nil }
func (p *Pin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

// Function reports "Out" or "In" like periph's drivers do.
func (p *Pin) Function() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output {
		return "Out/" + levelWord(p.level)
	}
	return "In/" + levelWord(p.level)
}

// Out drives the pin. The first call makes it an output at exactly that level,
// as periph's gpioioctl driver requests a line with its initial value.
func (p *Pin) Out(l gpio.Level) error {
	now := time.Now()
	p.mu.Lock()
	if p.failOut != nil {
		err := p.failOut
		p.mu.Unlock()
		return err
	}
	p.output = true
	if p.stuck == nil {
		p.level = l
	}
	p.recordLocked(Change{At: now, Level: l, Driven: true})
	p.mu.Unlock()
	p.gpio.logDriven(p, now, l)
	return nil
}

// PWM is not simulated.
func (p *Pin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("%s: PWM is not simulated", p.name)
}

// In makes the pin an input. With a pull and nothing driving it, it reads the
// pulled level.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output && len(p.history) > 0 {
		// Releasing an output: the line now floats to its pull.
		p.output = false
	}
	p.pull = pull
	p.edge = edge
	if !p.hasExternal() {
		switch pull {
		case gpio.PullUp:
			p.level = gpio.High
		case gpio.PullDown:
			p.level = gpio.Low
		}
	}
	return nil
}

func (p *Pin) hasExternal() bool { return p.external }

// maxPinHistory bounds the changes a pin keeps, so that a long --sim run
// does not grow without end; tests look at far fewer.
const maxPinHistory = 4096

// recordLocked appends a change to the history, dropping the oldest
// quarter when it is full. Call with p.mu held.
func (p *Pin) recordLocked(c Change) {
	if !c.Driven {
		p.external = true
	}
	if len(p.history) >= maxPinHistory {
		n := copy(p.history, p.history[maxPinHistory/4:])
		clear(p.history[n:])
		p.history = p.history[:n]
	}
	p.history = append(p.history, c)
}

// Read returns the level on the pin (the stuck level if it is stuck).
func (p *Pin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stuck != nil {
		return *p.stuck
	}
	return p.level
}

// Pull returns the pull set by In.
func (p *Pin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// WaitForEdge waits for an edge set up by In. A negative timeout waits
// forever, as in periph's gpiotest (the real gpioioctl driver differs: callers
// should always pass a finite timeout).
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	if timeout < 0 {
		<-p.edges
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.edges:
		return true
	case <-t.C:
		return false
	}
}

// Drive sets the level on an input pin from the outside world (a button, a
// door contact), raising an edge if the pin watches for one.
func (p *Pin) Drive(l gpio.Level) {
	p.mu.Lock()
	prev := p.level
	p.level = l
	p.recordLocked(Change{At: time.Now(), Level: l, Driven: false})
	edge := p.edge
	p.mu.Unlock()
	fire := prev != l && (edge == gpio.BothEdges || (edge == gpio.RisingEdge && l) || (edge == gpio.FallingEdge && !l))
	if fire {
		select {
		case p.edges <- struct{}{}:
		default:
		}
	}
}

// SetStuck makes the pin read l whatever is written (a welded contact).
func (p *Pin) SetStuck(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stuck = &l
}

// SetFailing makes every Out return err (nil clears it): an unpowered or
// unplugged expander.
func (p *Pin) SetFailing(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failOut = err
}

// Stuck reports whether the pin is stuck, and at which level.
func (p *Pin) Stuck() (gpio.Level, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stuck == nil {
		return gpio.Low, false
	}
	return *p.stuck, true
}

// Unstick clears a stuck level.
func (p *Pin) Unstick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stuck = nil
}

// IsOutput reports whether the pin has been driven.
func (p *Pin) IsOutput() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output
}

// History returns a copy of the pin's level changes, oldest first.
func (p *Pin) History() []Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Change(nil), p.history...)
}

// DrivenLevels returns the levels written by Out, oldest first.
func (p *Pin) DrivenLevels() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ls []gpio.Level
	for _, c := range p.history {
		if c.Driven {
			ls = append(ls, c.Level)
		}
	}
	return ls
}

// GPIOPin returns the simulated pin with the given name. With it, a *GPIO is
// the GPIO part of the bus provider that drivers use.
func (g *GPIO) GPIOPin(name string) (gpio.PinIO, error) {
	if name == "" {
		return nil, fmt.Errorf("empty GPIO pin name")
	}
	return g.Pin(name), nil
}
