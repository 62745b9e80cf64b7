package firmwaresim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"periph.io/x/conn/v3/gpio"
)

// Handler serves the simulator's control API, mounted by the gateway under
// /sim/ in --sim mode only. It lets tests and curious users look at pins and
// inject faults into a running gateway:
//
//	GET  /sim/gpio                          every pin: name, output, level, stuck
//	POST /sim/gpio/{pin}?level=high|low     drive an input (a button, a door contact)
//	POST /sim/gpio/{pin}?stuck=high|low|none make a pin ignore writes
//	POST /sim/gpio/{pin}?fail=<text>|none   make writes to a pin fail
//
//	GET  /sim/i2c                           every bus: name, transactions, chips
//	                                        (address, kind, nack; a bme280 also
//	                                        chip_id, stuck, pinned and its values)
//	GET  /sim/i2c/{addr}?bus=/dev/i2c-1     one chip
//	POST /sim/i2c/{addr}?bus=/dev/i2c-1&... change one chip, answer its state:
//	     nack=1|0                           stop acknowledging (unplugged) / answer again
//	     chipid=0x58                        a bme280 answers this id at 0xD0 (0x60: its own)
//	     stuck=1|0                          freeze a bme280's data registers / release them
//	     temperature=21.5&humidity=40&pressure=1013.25
//	                                        pin a bme280's values (°C, %RH, hPa; any subset)
//	     drift=1                            let a bme280's values drift again
//	     reset=1                            reset a bme280 as a brown-out would
//	     ch0=1.65&ch1=3.3                   set an ads1115's input voltages (V; any subset)
//
//	GET  /sim/modbus, POST /sim/modbus/{device}/{unit}?...   see control_modbus.go
//	GET  /sim/w1, POST /sim/w1/{id}?...                      see control_w1.go
//
// bus may be left out when there is only one bus; addr is 0x76 or 118. Bad
// parameters get 400 and change nothing; an unknown bus or chip gets 404.
func Handler(h *Hardware) http.Handler {
	g := h.GPIO
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim/gpio", func(w http.ResponseWriter, r *http.Request) {
		type pinView struct {
			Name   string `json:"name"`
			Output bool   `json:"output"`
			Level  string `json:"level"`
			Stuck  string `json:"stuck,omitempty"` // high or low when stuck
		}
		var out []pinView
		for _, p := range g.Pins() {
			v := pinView{Name: p.Name(), Output: p.IsOutput(), Level: levelWord(p.Read())}
			if l, stuck := p.Stuck(); stuck {
				v.Stuck = levelWord(l)
			}
			out = append(out, v)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /sim/gpio/{pin}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := g.Lookup(r.PathValue("pin"))
		if !ok {
			// Only the pins of the configuration (or a driver) exist: a
			// request never creates one.
			names := []string{}
			for _, p := range g.Pins() {
				names = append(names, p.Name())
			}
			http.Error(w, fmt.Sprintf("no simulated pin %q; the simulated pins are: %s", r.PathValue("pin"), strings.Join(names, ", ")), http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		if v := q.Get("level"); v != "" {
			l, err := parseLevel(v)
			if err != nil {
				http.Error(w, "level: "+err.Error(), http.StatusBadRequest)
				return
			}
			p.Drive(l)
		}
		if v := q.Get("stuck"); v != "" {
			if v == "none" {
				p.Unstick()
			} else {
				l, err := parseLevel(v)
				if err != nil {
					http.Error(w, "stuck: "+err.Error(), http.StatusBadRequest)
					return
				}
				p.SetStuck(l)
			}
		}
		if v := q.Get("fail"); v != "" {
			if v == "none" {
				p.SetFailing(nil)
			} else {
				p.SetFailing(errors.New(v))
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	registerI2C(mux, h)
	registerSerial(mux, h)
	registerModbus(mux, h)
	registerW1(mux, h)
	return mux
}

func parseLevel(s string) (gpio.Level, error) {
	switch s {
	case "high", "1":
		return gpio.High, nil
	case "low", "0":
		return gpio.Low, nil
	}
	return gpio.Low, errors.New(`want "high" or "low"`)
}
