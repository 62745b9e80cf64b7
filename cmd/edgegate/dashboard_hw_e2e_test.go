package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The demo configuration's Modbus relays and sensors, DS18B20 probe and
// ADS1115 channel show on the dashboard as any other relay and sensor: the
// dashboard has nothing of its own for them.
func TestDashboardShowsDemoHardware(t *testing.T) {
	ctx, _ := startBrowser(t, 2*time.Minute)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	p := startGateway(t, "--sim", "--listen", listen, "--data-dir", t.TempDir())
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	waitJS(t, ctx, 10*time.Second, "both sockets connected", bothConnected)
	p.httpPost("/sim/modbus/rs485/2?input=1&value=215")
	p.httpPost("/sim/w1/28-0316a2795eff?temperature=21.5")
	p.httpPost("/sim/i2c/0x48?ch0=1.65")
	for _, s := range []struct {
		name  string
		value float64
		unit  string
	}{
		{"tank.temperature", 21.5, "°C"}, {"tank_temp.temperature", 21.5, "°C"}, {"soil_probe.moisture", 50, "%"},
	} {
		waitJS(t, ctx, 10*time.Second, fmt.Sprintf("%s shows %v%s", s.name, s.value, s.unit),
			fmt.Sprintf(`(t => t.endsWith(%q) && Math.abs(parseFloat(t) - %v) <= 0.1)(document.querySelector('[data-sensor=%q]')?.textContent.replace(/\s/g, "") ?? "")`, s.unit, s.value, s.name))
	}
	click(t, ctx, `button[data-relay="pump2"]`)
	waitJS(t, ctx, 5*time.Second, "pump2 on after the click", `document.querySelector('[data-relay="pump2"]').dataset.state === "on"`)
	if !p.simModbusCoil("rs485", 1, 0) {
		t.Fatal("coil 0 of unit 1 is off after the click")
	}
}
