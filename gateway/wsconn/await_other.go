//go:build !unix

package wsconn

// canPeek is false where Await cannot poll a socket without reading it:
// there, connections are read by a goroutine that keeps waiting.
const canPeek = false

func (c *Conn) readable(fd uintptr) bool { return true }

func (op *tryOp) write(fd uintptr) bool { return true } // (never called: no socket to try)
