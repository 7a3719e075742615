package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// openDir opens a root filesystem directory as an image of one layer.
func openDir(dir string) (*Image, error) {
	if dir == "" {
		return nil, errors.New("missing directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Image{
		Source: SourceDir,
		Name:   abs,
		Layers: []Layer{&dirLayer{dir: abs}},
	}, nil
}

// dirLayer is a directory presented as a layer.
type dirLayer struct {
	dir string
}

func (l *dirLayer) DiffID() string    { return "dir:" + l.dir }
func (l *dirLayer) Digest() string    { return "" }
func (l *dirLayer) Size() int64       { return -1 }
func (l *dirLayer) CreatedBy() string { return "" }

// Open walks the directory. Nothing outside it is read: symbolic links are
// reported as links and never followed.
func (l *dirLayer) Open(ctx context.Context) (Stream, error) {
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, fmt.Errorf("opening directory: %w", err)
	}
	s := &dirStream{ctx: ctx, root: root}
	if err := s.push("."); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// dirFrame is a directory being listed.
type dirFrame struct {
	dir     string
	entries []fs.DirEntry
}

// dirStream yields a directory tree as tar headers, depth first with the
// entries of each directory in lexical order.
type dirStream struct {
	ctx   context.Context
	root  *os.Root
	stack []*dirFrame
	cur   io.Reader
	curF  *os.File
}

func (s *dirStream) push(dir string) error {
	f, err := s.root.Open(dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	s.stack = append(s.stack, &dirFrame{dir: dir, entries: entries})
	return nil
}

func (s *dirStream) closeFile() {
	if s.curF != nil {
		s.curF.Close()
		s.curF = nil
	}
	s.cur = nil
}

// Next returns the header of the next regular file, directory or symbolic
// link. Other file types (devices, sockets, pipes) are skipped.
func (s *dirStream) Next() (*tar.Header, error) {
	s.closeFile()
	for len(s.stack) > 0 {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
		top := s.stack[len(s.stack)-1]
		if len(top.entries) == 0 {
			s.stack = s.stack[:len(s.stack)-1]
			continue
		}
		e := top.entries[0]
		top.entries = top.entries[1:]
		rel := path.Join(top.dir, e.Name())
		fi, err := s.root.Lstat(rel)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while walking
			}
			return nil, err
		}
		var link string
		switch {
		case fi.Mode().IsRegular(), fi.IsDir():
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = s.root.Readlink(rel); err != nil {
				return nil, err
			}
		default:
			continue
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
			if err := s.push(rel); err != nil {
				return nil, err
			}
		}
		if fi.Mode().IsRegular() {
			f, err := s.root.Open(rel)
			if err != nil {
				return nil, err
			}
			s.curF = f
			s.cur = &exactReader{r: io.LimitReader(f, hdr.Size), left: hdr.Size, name: rel}
		}
		return hdr, nil
	}
	return nil, io.EOF
}

// Read reads the current regular file.
func (s *dirStream) Read(p []byte) (int, error) {
	if s.cur == nil {
		return 0, io.EOF
	}
	return s.cur.Read(p)
}

// Close releases the directory.
func (s *dirStream) Close() error {
	s.closeFile()
	s.stack = nil
	return s.root.Close()
}

// exactReader reports a file that shrank while it was read, so that the
// size in its header stays true.
type exactReader struct {
	r    io.Reader
	left int64
	name string
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%s: %w (file shrank while read)", e.name, io.ErrUnexpectedEOF)
	}
	return n, err
}
