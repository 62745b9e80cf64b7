package drivers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/drivers"
)

// gapPort is an RS485 bus with one unit that answers every read of holding
// registers with zeros after a short turnaround, recording when each
// request frame arrived and whether one arrived while another was still
// unanswered.
type gapPort struct {
	mu        sync.Mutex
	writes    []time.Time
	answered  []time.Time
	busy      bool
	overlaps  int
	out       chan []byte
	closeOnce sync.Once
}

func (p *gapPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, time.Now())
	if p.busy {
		p.overlaps++
	}
	p.busy = true
	resp := drivers.RTUFrame(b[0], []byte{0x03, 2, 0, 0})
	go func() {
		time.Sleep(5 * time.Millisecond) // the unit's turnaround
		p.mu.Lock()
		p.busy = false
		p.answered = append(p.answered, time.Now())
		p.mu.Unlock()
		defer func() { recover() }() // closed meanwhile
		p.out <- resp
	}()
	return len(b), nil
}

func (p *gapPort) Read(b []byte) (int, error) {
	r, ok := <-p.out
	if !ok {
		return 0, errors.New("closed")
	}
	return copy(b, r), nil
}

func (p *gapPort) Close() error {
	p.closeOnce.Do(func() { close(p.out) })
	return nil
}

// Requests from several relays and sensors on one bus go one at a time,
// each at least the inter-frame gap (3.5 characters) after the end of the
// previous answer.
func TestModbusRTUSerialisesAndSpacesRequests(t *testing.T) {
	port := &gapPort{out: make(chan []byte, 4)}
	const baud = 1200 // 3.5 characters of 10 bits: 29.2 ms
	pool := drivers.NewDevicePool([]drivers.SerialDevice{{Name: "bus", Driver: drivers.ModbusRTUDriver, Port: "/dev/fake", Baud: baud, Timeout: 2 * time.Second}}, quietLog)
	pool.Open = func(string, int) (drivers.Port, error) { return port, nil }
	defer pool.Close()
	env := drivers.Env{Devices: pool, Logger: quietLog}
	var sensors []drivers.Sensor
	for unit := 1; unit <= 3; unit++ {
		s, err := drivers.OpenModbusSensor(drivers.ModbusSensorOpts{Name: "s", Device: "bus", Unit: unit, Registers: []drivers.ModbusRegister{{Name: "v", Table: "holding", Scale: 1}}}, env)
		if err != nil {
			t.Fatal(err)
		}
		sensors = append(sensors, s)
	}
	var wg sync.WaitGroup
	for _, s := range sensors {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Read(context.Background(), make([]float64, 1)); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	port.mu.Lock()
	defer port.mu.Unlock()
	if len(port.writes) != 9 || port.overlaps != 0 {
		t.Fatalf("%d requests, %d sent while another was unanswered", len(port.writes), port.overlaps)
	}
	gap := drivers.RTUGap(baud, "none", 1)
	for i := 1; i < len(port.writes); i++ {
		if d := port.writes[i].Sub(port.answered[i-1]); d < gap {
			t.Errorf("request %d sent %v after the previous answer, want at least %v", i, d, gap)
		}
	}
}
