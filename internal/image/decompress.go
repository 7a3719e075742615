package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Compression names what a layer blob is compressed with.
type Compression string

// Compressions recognised by their magic bytes.
const (
	CompressionNone Compression = "none"
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Inflater selects the gzip implementation. The environment variable
// MAMORI_GUNZIP overrides the automatic choice with "igzip", "pigz" or "go".
//
// The automatic choice is the fastest one on the host, measured in
// docs/decisions/0003-gzip-inflate.md: ISA-L's igzip when installed, then the
// in-process klauspost/compress inflater. pigz is not chosen automatically:
// its decompression is single-threaded and no faster than the Go one.
func Inflater() string {
	if v := os.Getenv("MAMORI_GUNZIP"); v != "" {
		return v
	}
	inflaterOnce.Do(func() {
		inflater = "go"
		if _, err := exec.LookPath("igzip"); err == nil {
			inflater = "igzip"
		}
	})
	return inflater
}

var (
	inflaterOnce sync.Once
	inflater     string
)

// Decompress detects the compression of r by its magic bytes and returns the
// uncompressed stream. Closing the result closes r.
func Decompress(ctx context.Context, r io.ReadCloser) (io.ReadCloser, Compression, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		// Uncompressed blobs that can seek are returned as they are, so
		// that readers can skip data instead of reading it.
		var head [4]byte
		n, err := io.ReadFull(rs, head[:])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			r.Close()
			return nil, "", fmt.Errorf("reading layer header: %w", err)
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			r.Close()
			return nil, "", fmt.Errorf("reading layer header: %w", err)
		}
		if !bytes.HasPrefix(head[:n], gzipMagic) && !bytes.HasPrefix(head[:n], zstdMagic) {
			return &bufSeeker{rs: rs, c: r, buf: make([]byte, 0, 256<<10)}, CompressionNone, nil
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		r.Close()
		return nil, "", fmt.Errorf("reading layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		rc, err := gunzip(ctx, br, r, Inflater())
		return rc, CompressionGzip, err
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			r.Close()
			return nil, "", fmt.Errorf("zstd: %w", err)
		}
		return &funcCloser{Reader: zr, close: func() error { zr.Close(); return r.Close() }}, CompressionZstd, nil
	default:
		return &funcCloser{Reader: br, close: r.Close}, CompressionNone, nil
	}
}

func gunzip(ctx context.Context, br *bufio.Reader, under io.Closer, impl string) (io.ReadCloser, error) {
	switch impl {
	case "igzip", "pigz":
		path, err := exec.LookPath(impl)
		if err != nil {
			break // fall back to Go
		}
		return execInflate(ctx, path, br, under)
	}
	zr, err := kgzip.NewReader(br)
	if err != nil {
		under.Close()
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &funcCloser{Reader: zr, close: func() error { zr.Close(); return under.Close() }}, nil
}

// execInflate runs an external inflater ("igzip -dc") with the compressed
// stream on stdin. Errors from the tool (truncated or corrupt input) surface
// as read errors carrying its stderr.
func execInflate(ctx context.Context, path string, in io.Reader, under io.Closer) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, path, "-dc")
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		under.Close()
		return nil, err
	}
	if f, ok := out.(*os.File); ok {
		// A larger pipe lets the inflater run ahead on the other core
		// instead of waking us every 64 KiB. Best effort.
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		under.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return &procReader{out: out, buf: bufio.NewReaderSize(out, 256<<10), cmd: cmd, cancel: cancel, under: under, stderr: &stderr, name: path}, nil
}

type procReader struct {
	out    io.ReadCloser
	buf    *bufio.Reader
	cmd    *exec.Cmd
	cancel context.CancelFunc
	under  io.Closer
	stderr *bytes.Buffer
	name   string
	done   bool
	err    error
}

func (p *procReader) Read(b []byte) (int, error) {
	if p.done {
		return 0, p.err
	}
	n, err := p.buf.Read(b)
	if err == io.EOF {
		p.done = true
		if werr := p.cmd.Wait(); werr != nil {
			msg := strings.TrimSpace(p.stderr.String())
			if msg == "" {
				msg = werr.Error()
			}
			p.err = fmt.Errorf("gzip (%s): %s", p.name, msg)
			return n, p.err
		}
		p.err = io.EOF
	}
	return n, err
}

func (p *procReader) Close() error {
	p.cancel()
	if !p.done {
		p.out.Close()
		_ = p.cmd.Wait()
		p.done = true
	}
	return p.under.Close()
}

type funcCloser struct {
	io.Reader
	close func() error
}

func (f *funcCloser) Close() error { return f.close() }

// bufSeeker buffers reads from a seekable blob and keeps Seek working, so a
// tar reader gets its 512-byte headers from memory and skips unneeded file
// contents with a seek (within the buffer when the skip is short).
type bufSeeker struct {
	rs  io.ReadSeeker
	c   io.Closer
	buf []byte
	// off is the read position inside buf; pos is the blob offset of buf[0].
	off int
	pos int64
}

func (b *bufSeeker) Read(p []byte) (int, error) {
	if b.off >= len(b.buf) {
		if len(p) >= cap(b.buf) {
			// Large reads bypass the buffer.
			n, err := b.rs.Read(p)
			b.pos += int64(len(b.buf)) + int64(n)
			b.buf, b.off = b.buf[:0], 0
			return n, err
		}
		b.pos += int64(len(b.buf))
		n, err := b.rs.Read(b.buf[:cap(b.buf)])
		b.buf, b.off = b.buf[:n], 0
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

func (b *bufSeeker) Seek(offset int64, whence int) (int64, error) {
	cur := b.pos + int64(b.off)
	var target int64
	switch whence {
	case io.SeekStart:
		target = offset
	case io.SeekCurrent:
		target = cur + offset
	default:
		end, err := b.rs.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, err
		}
		target = end + offset
		// The underlying position moved: drop the buffer.
		b.pos, b.buf, b.off = end, b.buf[:0], 0
	}
	if target < 0 {
		return 0, errors.New("seek before the start of the layer")
	}
	if target >= b.pos && target <= b.pos+int64(len(b.buf)) {
		b.off = int(target - b.pos)
		return target, nil
	}
	if _, err := b.rs.Seek(target, io.SeekStart); err != nil {
		return 0, err
	}
	b.pos, b.buf, b.off = target, b.buf[:0], 0
	return target, nil
}

func (b *bufSeeker) Close() error { return b.c.Close() }
