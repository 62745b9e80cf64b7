package gateway

// closers undoes a start that fails half-way: each step that opened
// something pushes how to close it, and closeAll runs them last first.
type closers []func()

func (c *closers) push(close func()) { *c = append(*c, close) }

func (c *closers) closeAll() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}
