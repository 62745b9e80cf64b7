//go:build unix

package wsconn

import "syscall"

const canPeek = true

// readable is Await's poll of the socket: true once a byte (or the end of
// the stream, or an error) is there to read, which it peeks at without
// taking. False sends RawConn.Read back to wait for the next readiness.
func (c *Conn) readable(fd uintptr) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
		}
	}
}

// write is the attempt: a write of op.buf to the socket fd, with
// RawConn.Write's lock on it held. It never asks to wait for the socket
// (true); taking nothing is n 0 and no error.
func (op *tryOp) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), op.buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			n, err = 0, nil
		}
		op.n, op.err = max(n, 0), err
		return true
	}
}
