package firmwaresim

import "net/http"

// registerI2C adds the I2C part of the control API.
func registerI2C(mux *http.ServeMux, h *Hardware) {}
