package firmwaresim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// registerModbus adds the Modbus part of the control API:
//
//	GET  /sim/modbus                       every device: name, kind, units (their
//	                                       non-zero coils and registers), requests
//	POST /sim/modbus/{device}/{unit}?input=1&value=215    set input register 1 (raw)
//	POST /sim/modbus/{device}/{unit}?holding=0&value=7    set holding register 0
//	POST /sim/modbus/{device}/{unit}?fault=silent|crc|exception&code=2|none
//
// Bad parameters get 400, an unknown device or unit 404; a POST answers the
// unit's new state.
func registerModbus(mux *http.ServeMux, h *Hardware) {
	mux.HandleFunc("GET /sim/modbus", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(modbusOf(h).all())
	})
	mux.HandleFunc("POST /sim/modbus/{device}/{unit}", func(w http.ResponseWriter, r *http.Request) {
		d := h.Modbus(r.PathValue("device"))
		if d == nil {
			http.Error(w, "no simulated Modbus device named "+strconv.Quote(r.PathValue("device"))+"; GET /sim/modbus lists them", http.StatusNotFound)
			return
		}
		id, err := strconv.Atoi(r.PathValue("unit"))
		u := d.Unit(id)
		if err != nil || u == nil {
			http.Error(w, "device "+strconv.Quote(d.Name)+" has no unit "+strconv.Quote(r.PathValue("unit")), http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		in, hold, fault := q.Get("input"), q.Get("holding"), q.Get("fault")
		if in == "" && hold == "" && fault == "" {
			http.Error(w, "give input=<register>&value=<0-65535>, holding=<register>&value=<0-65535>, or fault=silent|crc|exception&code=<n>|none", http.StatusBadRequest)
			return
		}
		setReg := func(table, reg string, set func(int, uint16) error) bool {
			addr, err := strconv.Atoi(reg)
			if err != nil {
				http.Error(w, table+": want a register address", http.StatusBadRequest)
				return false
			}
			v, err := strconv.ParseUint(q.Get("value"), 10, 16)
			if err != nil {
				http.Error(w, "value: want a raw register value from 0 to 65535", http.StatusBadRequest)
				return false
			}
			if err := set(addr, uint16(v)); err != nil {
				http.Error(w, table+": "+err.Error(), http.StatusBadRequest)
				return false
			}
			return true
		}
		if in != "" && !setReg("input", in, u.SetInput) {
			return
		}
		if hold != "" && !setReg("holding", hold, u.SetHolding) {
			return
		}
		if fault != "" {
			code := 0
			if c := q.Get("code"); c != "" {
				if code, err = strconv.Atoi(c); err != nil {
					http.Error(w, "code: want an exception code such as 2", http.StatusBadRequest)
					return
				}
			}
			if err := u.SetFault(fault, code); err != nil {
				http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(u.view(id))
	})
}
