package drivers

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// registry holds the drivers of one kind (relay or sensor) by name. The
// driver files fill it from their init functions; it is only read after.
type registry[F any] struct {
	kind    string
	drivers map[string]F
}

func (r *registry[F]) register(name string, f F) {
	if _, dup := r.drivers[name]; dup {
		panic("drivers: " + r.kind + " driver registered twice: " + name)
	}
	if r.drivers == nil {
		r.drivers = map[string]F{}
	}
	r.drivers[name] = f
}

// names lists the registered drivers, sorted.
func (r *registry[F]) names() []string { return slices.Sorted(maps.Keys(r.drivers)) }

// lookup finds the driver of the device named device, or says which
// drivers this build has.
func (r *registry[F]) lookup(device, driver string) (F, error) {
	f, ok := r.drivers[driver]
	if !ok {
		return f, fmt.Errorf("%s %q: driver %q is not available in this build (available: %s)",
			r.kind, device, driver, strings.Join(r.names(), ", "))
	}
	return f, nil
}
