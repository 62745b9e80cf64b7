// Package stack sizes the stacks of the gateway's short-lived goroutines.
package stack

// Grow makes the stack of a fresh goroutine big enough for a write
// (a flush, a reply) before the deep frames of one are on it. Quiet
// connections keep the runtime's starting stack at its 2 KiB minimum (see gateway's
// reader.serve), so a goroutine started for a flush would otherwise grow
// its stack in the middle of the write, by copying it and adjusting every
// frame on it: at 100,000 flushes a second that took a tenth of the
// gateway's CPU. Grown here, with a frame or two on the stack, it costs an
// allocation from the per-CPU stack cache and a copy of almost nothing.
// A frame of 1.25 KiB takes a 2 KiB stack to 4 KiB, which a flush fits
// in; n is 0 (a parameter, so the frame cannot be optimised away).
//
//go:noinline
func Grow(n int) byte {
	var pad [1280]byte
	pad[n] = 1
	return pad[n/2]
}
