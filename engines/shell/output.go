package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/goentrance/entrance"
)

// readBufferSize is the buffer size of each pipe reader. Lines longer than it
// are assembled from several reads.
const readBufferSize = 32 << 10

// drainTimeout bounds the reading of the pipes after the process group
// has been killed.
//
// NOTE: without a PID namespace, a process that left the group (setsid,
// or a daemon) survives the kill and may keep a pipe open forever, so
// reading stops at this timeout. In a namespace, every process of the job
// has ended by then, and only a pipe that a job passed to a process
// outside it, over a Unix socket, can stay open. If the Output consumer is
// slower than this after the kill, the lines still in the pipe buffers are
// lost too.
const drainTimeout = 2 * time.Second

// outputReader turns the shell's stdout and stderr into log lines and the
// rows of one text result set.
type outputReader struct {
	ctx     context.Context
	out     entrance.Output
	maxLine int
	wg      sync.WaitGroup

	// Written by the reading goroutines; read after wg.Wait.
	results   entrance.ResultWriter
	resultErr error
	stdoutErr error
	stderrErr error
}

func newOutputReader(ctx context.Context, out entrance.Output, maxLine int) *outputReader {
	return &outputReader{ctx: ctx, out: out, maxLine: maxLine}
}

// start reads both pipes concurrently until EOF.
func (r *outputReader) start(stdout, stderr *os.File) {
	r.wg.Go(func() { r.stdoutErr = readLines(stdout, r.maxLine, r.stdoutLine) })
	r.wg.Go(func() { r.stderrErr = readLines(stderr, r.maxLine, r.stderrLine) })
}

// drain waits for both readers and closes the pipes. It is called after
// the process group has been killed, when the pipes normally reach EOF at
// once. Reads still blocked after drainTimeout fail with a deadline error.
func (r *outputReader) drain(stdout, stderr *os.File) error {
	deadline := time.Now().Add(drainTimeout)
	stdout.SetReadDeadline(deadline)
	stderr.SetReadDeadline(deadline)
	r.wg.Wait()

	stdout.Close()
	stderr.Close()
	err := errors.Join(r.stdoutErr, r.stderrErr)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("pipe still open %v after the process group was killed, "+
			"probably by a process that left the group: %w", drainTimeout, err)
	}
	return err
}

// stdoutLine logs a stdout line at info level and adds it to the result
// set, which it opens at the first line. After a result set error it only
// logs, so the pipe keeps being read.
func (r *outputReader) stdoutLine(line string) {
	r.out.Log(entrance.LevelInfo, line)
	if r.resultErr != nil {
		return
	}

	if r.results == nil {
		w, err := r.out.ResultSet(r.ctx, entrance.ResultMeta{Kind: entrance.ResultText})
		if err != nil {
			r.resultErr = fmt.Errorf("open result set: %w", err)
			return
		}
		r.results = w
	}

	if err := r.results.WriteRow(r.ctx, []*string{&line}); err != nil {
		r.resultErr = fmt.Errorf("write result row: %w", err)
	}
}

func (r *outputReader) stderrLine(line string) {
	r.out.Log(entrance.LevelError, line)
}

// closeResults closes the result set, if one was opened, and returns the
// first result set error.
func (r *outputReader) closeResults(ctx context.Context) error {
	if r.results == nil {
		return r.resultErr
	}
	if err := r.results.Close(ctx); err != nil && r.resultErr == nil {
		r.resultErr = fmt.Errorf("close result set: %w", err)
	}
	return r.resultErr
}

// readLines calls emit for each line of rd until EOF, which is not an
// error. Lines end at '\n'. A trailing '\r' is removed, a last line
// without '\n' is kept, and a line longer than maxLine is truncated.
func readLines(rd io.Reader, maxLine int, emit func(line string)) error {
	br := bufio.NewReaderSize(rd, readBufferSize)
	line := lineBuffer{max: maxLine}
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			chunk = chunk[:len(chunk)-1]
		}
		line.append(chunk)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}

		if complete || line.size > 0 {
			emit(line.take())
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read output: %w", err)
		}
	}
}

// lineBuffer assembles one line, keeping at most max bytes of it.
type lineBuffer struct {
	max    int
	buf    []byte
	size   int  // length of the line so far, including dropped bytes
	lastCR bool // the last byte seen is '\r'
}

func (b *lineBuffer) append(p []byte) {
	if len(p) == 0 {
		return
	}
	b.size += len(p)
	b.lastCR = p[len(p)-1] == '\r'
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
}

// take returns the line without a trailing '\r' and resets the buffer.
func (b *lineBuffer) take() string {
	size := b.size
	if b.lastCR {
		size--
	}

	var line string
	if size <= b.max {
		line = string(b.buf[:size])
	} else {
		line = string(cutPartialRune(b.buf)) + " [truncated from " + strconv.Itoa(size) + " bytes]"
	}

	b.buf = b.buf[:0]
	b.size = 0
	b.lastCR = false
	return line
}

// cutPartialRune drops an incomplete UTF-8 sequence from the end of p.
func cutPartialRune(p []byte) []byte {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				return p[:i]
			}
			break
		}
	}
	return p
}
