// Package firmwaresim is the simulated hardware that sits below the drivers:
// GPIO pins that implement periph's gpio.PinIO, and (in later files) buses and
// device firmware. Drivers cannot tell it from real hardware; tests can read
// and drive every level, inject faults, and read the history of what was
// driven.
package firmwaresim
