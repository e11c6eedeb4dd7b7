package entrance

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// readBufferSize is the read buffer of a WebSocket connection. Requests
// are small, and coder/websocket reads a frame payload larger than the
// buffer directly from the socket, so 1 KiB is enough. net/http's 4 KiB
// would be a quarter of what an idle connection costs.
const readBufferSize = 1 << 10

// acceptWebSocket upgrades r to a WebSocket connection with a read buffer
// of readBufferSize. Compression stays off: it would cost each connection
// a compressor and compress each shared push once per connection.
func (s *Server) acceptWebSocket(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	if h, ok := w.(http.Hijacker); ok {
		w = smallReadBuffer{ResponseWriter: w, hijacker: h}
	}
	return websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.originPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
}

// smallReadBuffer hands coder/websocket the hijacked connection with a
// read buffer of readBufferSize in place of net/http's, which is then
// freed. Its write buffer stays: a push of up to 4 KiB goes out in one
// write.
type smallReadBuffer struct {
	http.ResponseWriter
	hijacker http.Hijacker
}

func (w smallReadBuffer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.hijacker.Hijack()
	if err != nil || brw.Reader.Buffered() > readBufferSize {
		return conn, brw, err
	}
	// Bytes that the client sent after its request are in net/http's
	// buffer already; they move to the new buffer.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	rd := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn),
		readBufferSize)
	if _, err := rd.Peek(len(buffered)); err != nil {
		return conn, brw, nil
	}
	return conn, bufio.NewReadWriter(rd, brw.Writer), nil
}
