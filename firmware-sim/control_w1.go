package firmwaresim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// registerW1 adds the 1-wire part of the control API:
//
//	GET  /sim/w1                              every probe: id, temperature, fault
//	POST /sim/w1/{id}?temperature=21.5        pin a probe's temperature (°C)
//	POST /sim/w1/{id}?fault=crc|missing|85|none  inject a failure / clear it
//
// Bad parameters get 400, an unknown probe 404; a POST answers every probe.
func registerW1(mux *http.ServeMux, h *Hardware) {
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /sim/w1", func(w http.ResponseWriter, r *http.Request) {
		t, err := h.W1()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, t.view())
	})
	mux.HandleFunc("POST /sim/w1/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, err := h.W1()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		id, q := r.PathValue("id"), r.URL.Query()
		temp, fault := q.Get("temperature"), q.Get("fault")
		if temp == "" && fault == "" {
			http.Error(w, "give temperature=<°C> or fault=crc|missing|85|none", http.StatusBadRequest)
			return
		}
		fail := func(err error) {
			code := http.StatusBadRequest
			if errors.Is(err, errNoProbe) {
				code = http.StatusNotFound
				err = errors.New("no simulated probe " + strconv.Quote(id) + "; GET /sim/w1 lists them")
			}
			http.Error(w, err.Error(), code)
		}
		if temp != "" {
			v, err := strconv.ParseFloat(temp, 64)
			if err != nil {
				http.Error(w, "temperature: want a number (°C)", http.StatusBadRequest)
				return
			}
			if err := t.Set(id, v); err != nil {
				fail(err)
				return
			}
		}
		if fault != "" {
			if err := t.SetFault(id, fault); err != nil {
				fail(err)
				return
			}
		}
		writeJSON(w, t.view())
	})
}
