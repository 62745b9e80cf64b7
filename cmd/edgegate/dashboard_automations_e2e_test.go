package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The dashboard's automations panel in a real headless Chromium against
// the real binary: every automation with its kind and state, the
// operator's enable/disable switch, and relays that say when an
// automation or a guard last changed them.
func TestDashboardAutomationsChromium(t *testing.T) {
	ctx, blog := startBrowser(t, 2*time.Minute)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	p := startGateway(t, "--sim", "--config", writeConfig(t, autoConfig), "--listen", listen, "--data-dir", t.TempDir())
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+p.addr+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	waitJS(t, ctx, 10*time.Second, "both sockets connected", bothConnected)
	waitJS(t, ctx, 5*time.Second, "the automations panel lists the four automations",
		`!document.getElementById("automations-section").hidden && document.querySelectorAll("[data-automation]").length === 4`)
	if got := js[string](t, ctx, `[...document.querySelectorAll("[data-automation] .kind")].map(k => k.textContent).join(",")`); got != "Thermostat,Condition,Condition,Schedule" {
		t.Errorf("kinds %q", got)
	}
	waitJS(t, ctx, 3*time.Second, "the schedule shows its next run", `document.querySelector('[data-automation="ticker"] .automation-meta').textContent.includes("next ")`)

	// The thermostat switches the heater on: its row is active, the relay says who.
	c, _ := dialRelay(t, p, "")
	p.httpPost("/sim/i2c/0x76?temperature=15")
	waitStateEvent(t, c, "heater", "on", 5*time.Second)
	waitJS(t, ctx, 3*time.Second, "heater shown as changed by keep_warm",
		`document.querySelector('[data-relay-card="heater"]').dataset.changedBy === "automation" && document.querySelector('[data-relay-card="heater"] .relay-meta').textContent.includes("by automation keep_warm")`)
	waitJS(t, ctx, 3*time.Second, "keep_warm active and fired",
		`document.querySelector('[data-automation="keep_warm"]').dataset.active === "true" && !document.querySelector('[data-automation="keep_warm"] .automation-meta').textContent.includes("never")`)

	// The sensor fails: the thermostat's error shows in its row.
	p.httpPost("/sim/i2c/0x76?nack=1")
	waitJS(t, ctx, 5*time.Second, "keep_warm shows the sensor error",
		`document.querySelector('[data-automation="keep_warm"] .automation-error:not([hidden])')?.textContent.includes("room.temperature")`)
	p.httpPost("/sim/i2c/0x76?nack=0")

	// The operator's switch disables an automation; other clients are told.
	click(t, ctx, `button[data-automation-switch="ticker"]`)
	for {
		m := c.read()
		if m["event"] == "automation" && m["automation"].(map[string]any)["name"] == "ticker" && m["automation"].(map[string]any)["enabled"] == false {
			break
		}
	}
	waitJS(t, ctx, 3*time.Second, "ticker shown disabled",
		`document.querySelector('[data-automation="ticker"]').dataset.enabled === "false" && document.querySelector('button[data-automation-switch="ticker"]').getAttribute("aria-pressed") === "false"`)
	click(t, ctx, `button[data-automation-switch="ticker"]`)
	waitJS(t, ctx, 3*time.Second, "ticker shown enabled again", `document.querySelector('[data-automation="ticker"]').dataset.enabled === "true"`)

	// max_on: the pump goes off by its guard, and the page says so.
	c.send(map[string]any{"op": "set", "relay": "pump", "state": "on"})
	waitStateEvent(t, c, "pump", "off", 5*time.Second)
	waitJS(t, ctx, 3*time.Second, "pump shown as switched off by its guard",
		`document.querySelector('[data-relay-card="pump"] .relay-meta').textContent.includes("max_on guard")`)

	// A reload rebuilds it all from hello and the automations reply.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "after a reload: the guard and the automation still named",
		`document.querySelector('[data-relay-card="pump"]')?.dataset.changedBy === "guard" && document.querySelector('[data-relay-card="heater"] .relay-meta')?.textContent.includes("keep_warm") && document.querySelectorAll("[data-automation]").length === 4`)
	for _, e := range blog.errors() {
		t.Errorf("browser console: %s", e)
	}
}
