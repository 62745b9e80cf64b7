package firmwaresim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// registerSerial adds the serial part of the control API:
//
//	GET  /sim/serial                 every simulated serial device: name, kind,
//	                                 path, pty, plugged, relays (and frames
//	                                 received, for a usb-relay module)
//	GET  /sim/serial/{device}        one device
//	POST /sim/serial/{device}?fault=unplug|replug|reboot|garbage|slow|mute|none
//	     [&delay=2s]                 inject a fault (slow: replies late by delay,
//	                                 default 2s; none: clears slow and mute)
//	POST /sim/serial/{device}?press=N press the board's button of relay channel N
//
// {device} is the name Populate was given for it (the gateway gives a
// device's name, or the base name of the port, "ttyUSB0", for a usb-relay
// relay given by port). Bad parameters get 400, an unknown device 404; a
// POST answers the device's new state.
func registerSerial(mux *http.ServeMux, h *Hardware) {
	reg := func() *serialRegistry { return serialsOf(h) }
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /sim/serial", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, reg().all())
	})
	one := func(w http.ResponseWriter, name string) (serialSim, bool) {
		d := reg().get(name)
		if d == nil {
			http.Error(w, "no simulated serial device named "+strconv.Quote(name)+"; GET /sim/serial lists them", http.StatusNotFound)
			return nil, false
		}
		return d, true
	}
	mux.HandleFunc("GET /sim/serial/{device}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("device")
		if d, ok := one(w, name); ok {
			v := d.view()
			v.Name = name
			writeJSON(w, v)
		}
	})
	mux.HandleFunc("POST /sim/serial/{device}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("device")
		d, ok := one(w, name)
		if !ok {
			return
		}
		q := r.URL.Query()
		fault, press := q.Get("fault"), q.Get("press")
		if fault == "" && press == "" {
			http.Error(w, "give fault=unplug|replug|reboot|garbage|slow|mute|none or press=<channel>", http.StatusBadRequest)
			return
		}
		delay := 2 * time.Second
		if s := q.Get("delay"); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v < 0 || v > time.Minute {
				http.Error(w, "delay: want a duration such as 1500ms, at most 1m", http.StatusBadRequest)
				return
			}
			delay = v
		}
		ch := 0
		if press != "" {
			v, err := strconv.Atoi(press)
			if err != nil || v < 1 {
				http.Error(w, "press: want a relay channel number from 1", http.StatusBadRequest)
				return
			}
			ch = v
		}
		if fault != "" {
			if err := d.fault(fault, delay); err != nil {
				http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		if ch > 0 {
			if err := d.press(ch); err != nil {
				http.Error(w, "press: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		v := d.view()
		v.Name = name
		writeJSON(w, v)
	})
}
