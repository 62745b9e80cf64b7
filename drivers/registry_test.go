package drivers

import (
	"strings"
	"testing"

	"github.com/edgegate/edgegate/gateway/config"
)

// A driver this build lacks is an error naming the device, the driver and
// the drivers there are; registering one twice is a programming error.
func TestRegistry(t *testing.T) {
	_, err := OpenRelay(config.Relay{Name: "pump", Driver: "nope"}, Env{})
	if err == nil || !strings.Contains(err.Error(), `relay "pump": driver "nope" is not available in this build (available: `+strings.Join(RelayDrivers(), ", ")+")") {
		t.Errorf("relay: %v", err)
	}
	_, err = OpenSensor(config.Sensor{Name: "room", Driver: "nope"}, Env{})
	if err == nil || !strings.Contains(err.Error(), `sensor "room": driver "nope" is not available in this build (available: `+strings.Join(SensorDrivers(), ", ")+")") {
		t.Errorf("sensor: %v", err)
	}
	if n := RelayDrivers(); len(n) == 0 || !strings.Contains(strings.Join(n, ","), "gpio") {
		t.Errorf("relay drivers %v", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("a relay driver registered twice did not panic")
		}
	}()
	RegisterRelay(RelayDrivers()[0], nil)
}
