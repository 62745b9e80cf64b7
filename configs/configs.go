// Package configs holds the example configurations; sim.yaml is embedded in
// the binary as the default of --sim.
package configs

import _ "embed"

// Sim is configs/sim.yaml, the configuration that --sim runs by default.
//
//go:embed sim.yaml
var Sim []byte

// SimName is how errors in the embedded file name it.
const SimName = "configs/sim.yaml (embedded)"
