package firmwaresim

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

func TestPinJournalAndHistory(t *testing.T) {
	var journal bytes.Buffer
	g := NewGPIO(&journal)
	p := g.Pin("gpio17")
	if g.Pin("GPIO17") != p {
		t.Fatal("pin names are case-insensitive")
	}
	p.Out(gpio.High)
	p.Out(gpio.Low)
	if got := p.DrivenLevels(); len(got) != 2 || got[0] != gpio.High || got[1] != gpio.Low {
		t.Fatalf("history %v", got)
	}
	lines := strings.Split(strings.TrimSpace(journal.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " GPIO17 out high") || !strings.HasSuffix(lines[1], " GPIO17 out low") {
		t.Fatalf("journal %q", journal.String())
	}
}

func TestPinEdgesAndPull(t *testing.T) {
	p := NewGPIO(nil).Pin("GPIO27")
	p.In(gpio.PullUp, gpio.BothEdges)
	if p.Read() != gpio.High {
		t.Fatal("pull-up input should read high")
	}
	if p.WaitForEdge(20 * time.Millisecond) {
		t.Fatal("edge without a change")
	}
	go func() { time.Sleep(10 * time.Millisecond); p.Drive(gpio.Low) }()
	if !p.WaitForEdge(2*time.Second) || p.Read() != gpio.Low {
		t.Fatal("no falling edge")
	}
}

func TestControlAPI(t *testing.T) {
	h := NewHardware(nil)
	g := h.GPIO
	srv := httptest.NewServer(Handler(h))
	defer srv.Close()
	// Only a pin that exists can be controlled; none is made by a request.
	resp, err := http.Post(srv.URL+"/sim/gpio/GPIO4?level=high", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `no simulated pin "GPIO4"`) {
		t.Fatalf("unknown pin: %d %s", resp.StatusCode, body)
	}
	if _, made := g.Lookup("GPIO4"); made {
		t.Fatal("a request for an unknown pin created it")
	}
	g.Pin("GPIO4") // as a configured relay's driver does
	post := func(q string) int {
		resp, err := http.Post(srv.URL+"/sim/gpio/GPIO4?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if post("stuck=high") != 204 || g.Pin("GPIO4").Out(gpio.Low) != nil || g.Pin("GPIO4").Read() != gpio.High {
		t.Fatal("stuck pin")
	}
	if post("stuck=sideways") != 400 {
		t.Fatal("a bad level must be refused")
	}
	if post("fail=unplugged") != 204 || g.Pin("GPIO4").Out(gpio.Low) == nil {
		t.Fatal("failing pin")
	}
}

func TestPinNamesAsTheLoaderReadsThem(t *testing.T) {
	g := NewGPIO(nil)
	if g.Pin("17") != g.Pin("GPIO17") || g.Pin("gpio17") != g.Pin("017") {
		t.Fatal(`"17", "017", "gpio17" and "GPIO17" must be one pin`)
	}
	p := g.Pin("GPIO5")
	if _, stuck := p.Stuck(); stuck {
		t.Fatal("new pin stuck")
	}
	p.SetStuck(gpio.High)
	if l, stuck := p.Stuck(); !stuck || l != gpio.High {
		t.Fatal("Stuck does not report the stuck level")
	}
}

func TestPinHistoryIsBounded(t *testing.T) {
	p := NewGPIO(nil).Pin("GPIO6")
	p.Drive(gpio.High) // an outside level, long ago
	for i := 0; i < 3*maxPinHistory; i++ {
		p.Out(gpio.Level(i%2 == 0))
	}
	h := p.History()
	if len(h) > maxPinHistory || len(h) < maxPinHistory*3/4 {
		t.Fatalf("history of %d changes, want at most %d and most of them kept", len(h), maxPinHistory)
	}
	if last := h[len(h)-1]; last.Level != gpio.Low || !last.Driven {
		t.Fatalf("newest change %+v, want the last Out(Low)", last)
	}
	if !p.hasExternal() {
		t.Fatal("the outside drive was forgotten with the old history")
	}
}
