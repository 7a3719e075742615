package fetch

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// osvZip builds an OSV export zip holding the test record under id.
func osvZip(t testing.TB, ids ...string) []byte {
	t.Helper()
	rec, err := os.ReadFile("testdata/osv-record.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, id := range ids {
		w, err := zw.Create(id + ".json")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.ReplaceAll(rec, []byte("MAMORI-TEST-2026-0001"), []byte(id)))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server is an httptest server on 127.0.0.1 whose handler can be swapped
// and which records the requests it got.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	reqs    []*http.Request
}

func newServer(t *testing.T) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) set(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
	s.reqs = nil
}

func (s *server) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// serveETag serves body with an ETag and honours If-None-Match.
func serveETag(body []byte, etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	}
}

func zipSource(s *server) Source {
	return Source{Name: "osv-debian", URL: s.URL + "/Debian/all.zip", Format: FormatOSVZip}
}

func TestFetchETag(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	src := zipSource(s)
	v1 := osvZip(t, "MAMORI-TEST-1")
	s.set(serveETag(v1, `"v1"`))

	res, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.NotModified || res.ETag != `"v1"` || res.SHA256 != sha(v1) || res.Size != int64(len(v1)) {
		t.Errorf("first fetch: %+v", res)
	}
	if res.Path != filepath.Join(dir, "osv-debian.zip") {
		t.Errorf("path = %s", res.Path)
	}
	if r := s.requests()[0]; r.Header.Get("If-None-Match") != "" || r.Header.Get("User-Agent") != UserAgent {
		t.Errorf("first request headers: %v", r.Header)
	}
	checkFile(t, res.Path, v1)

	s.set(serveETag(v1, `"v1"`))
	res2, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.requests()[0].Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("second request If-None-Match = %q", got)
	}
	if !res2.NotModified || res2.SHA256 != sha(v1) || res2.Size != int64(len(v1)) || !res2.Fetched.After(res.Fetched) {
		t.Errorf("second fetch: %+v", res2)
	}
	checkFile(t, res.Path, v1)

	v2 := osvZip(t, "MAMORI-TEST-1", "MAMORI-TEST-2")
	s.set(serveETag(v2, `"v2"`))
	res3, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res3.NotModified || res3.ETag != `"v2"` || res3.SHA256 != sha(v2) {
		t.Errorf("third fetch: %+v", res3)
	}
	checkFile(t, res.Path, v2)
	checkNoTemp(t, dir)
}

func TestFetchLastModified(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	src := Source{Name: "alpine-v3.20-main", URL: s.URL + "/v3.20/main.yaml", Format: FormatAlpineSecDB}
	body, err := os.ReadFile("testdata/secdb-main.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mod := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "main.yaml", mod, bytes.NewReader(body))
	})
	res, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.LastModified != mod.Format(http.TimeFormat) || res.ETag != "" || res.NotModified {
		t.Errorf("first fetch: %+v", res)
	}
	res, err = Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := s.requests()[1]
	if r.Header.Get("If-Modified-Since") != mod.Format(http.TimeFormat) || r.Header.Get("If-None-Match") != "" {
		t.Errorf("second request headers: %v", r.Header)
	}
	if !res.NotModified || res.SHA256 != sha(body) {
		t.Errorf("second fetch: %+v", res)
	}
	checkFile(t, res.Path, body)
}

func TestFetchSHA256URL(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	v1 := osvZip(t, "MAMORI-TEST-1")
	sum := sha(v1)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".sha256") {
			fmt.Fprintf(w, "%s  all.zip\n", strings.ToUpper(sum))
			return
		}
		w.Write(v1)
	})
	src := zipSource(s)
	src.SHA256URL = s.URL + "/Debian/all.zip.sha256"
	res, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum || res.NotModified {
		t.Errorf("first fetch: %+v", res)
	}
	// The checksum names the cached file: the file itself is not requested.
	s.set(s.handler)
	res, err = Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := s.requests(); len(reqs) != 1 || !strings.HasSuffix(reqs[0].URL.Path, ".sha256") {
		t.Errorf("requests = %d, want only the checksum", len(reqs))
	}
	if !res.NotModified || res.SHA256 != sum {
		t.Errorf("second fetch: %+v", res)
	}
}

func TestFetchChangedURL(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	v1 := osvZip(t, "MAMORI-TEST-1")
	s.set(serveETag(v1, `"v1"`))
	src := zipSource(s)
	if _, err := Fetch(t.Context(), s.Client(), src, dir); err != nil {
		t.Fatal(err)
	}
	// A new URL (a mirror) must not be asked with the old URL's validators.
	src.URL = s.URL + "/mirror/all.zip"
	s.set(serveETag(v1, `"v1"`))
	res, err := Fetch(t.Context(), s.Client(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if h := s.requests()[0].Header.Get("If-None-Match"); h != "" || res.NotModified {
		t.Errorf("If-None-Match = %q, result %+v", h, res)
	}
}

// hijack answers with the given headers and partial body, then closes the
// connection.
func hijack(header string, partial []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 200 OK\r\n" + header + "\r\n")
		bw.Write(partial)
		bw.Flush()
	}
}

func TestFetchFailureKeepsOldFile(t *testing.T) {
	v1 := osvZip(t, "MAMORI-TEST-1")
	v2 := osvZip(t, "MAMORI-TEST-1", "MAMORI-TEST-2", "MAMORI-TEST-3")
	chunk := func(b []byte) string { return fmt.Sprintf("%x\r\n%s\r\n", len(b), b) }
	tests := []struct {
		name    string
		handler http.HandlerFunc
		src     func(Source, *server) Source
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		want    string
	}{
		{
			name:    "server error",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			want:    "500 Internal Server Error",
		},
		{
			name:    "not found",
			handler: http.NotFound,
			want:    "404 Not Found",
		},
		{
			name: "checksum mismatch",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, ".sha256") {
					fmt.Fprintln(w, sha([]byte("another file")))
					return
				}
				w.Write(v2)
			},
			src: func(s Source, srv *server) Source {
				s.SHA256URL = srv.URL + "/all.zip.sha256"
				return s
			},
			want: "checksum mismatch",
		},
		{
			name: "checksum not hex",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, ".sha256") {
					fmt.Fprintln(w, "<html>not found</html>")
					return
				}
				w.Write(v2)
			},
			src: func(s Source, srv *server) Source {
				s.SHA256URL = srv.URL + "/all.zip.sha256"
				return s
			},
			want: "not a hex SHA-256",
		},
		{
			name:    "connection closed mid-body",
			handler: hijack("Content-Length: "+strconv.Itoa(len(v2))+"\r\n", v2[:len(v2)/2]),
			want:    "unexpected EOF",
		},
		{
			name:    "connection closed mid-chunked-body",
			handler: hijack("Transfer-Encoding: chunked\r\n", []byte(chunk(v2[:len(v2)/2]))),
			want:    "unexpected EOF",
		},
		{
			name:    "too large by Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(v2) },
			src:     func(s Source, _ *server) Source { s.MaxSize = int64(len(v2) - 1); return s },
			want:    "larger than the limit",
		},
		{
			name: "too large while streaming",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write(v2[:10])
				w.(http.Flusher).Flush() // chunked: no Content-Length
				w.Write(v2[10:])
			},
			src:  func(s Source, _ *server) Source { s.MaxSize = int64(len(v2) - 1); return s },
			want: "larger than the limit",
		},
		{
			name: "HTML instead of zip",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body>Service temporarily unavailable</body></html>")
			},
			want: "not a valid osv-zip file",
		},
		{
			name:    "truncated zip with matching length",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write(v2[:len(v2)-30]) },
			want:    "not a valid osv-zip file",
		},
		{
			name: "timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(v2)))
				w.Write(v2[:100])
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 200*time.Millisecond)
			},
			want: "context deadline exceeded",
		},
		{
			name: "not modified without validators",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotModified)
			},
			src: func(s Source, srv *server) Source {
				s.URL = srv.URL + "/elsewhere/all.zip" // new URL: old validators unused
				return s
			},
			want: "unconditional request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			dir := t.TempDir()
			src := zipSource(s)
			s.set(serveETag(v1, `"v1"`))
			good, err := Fetch(t.Context(), s.Client(), src, dir)
			if err != nil {
				t.Fatal(err)
			}
			oldMeta, err := os.ReadFile(metaPath(good.Path))
			if err != nil {
				t.Fatal(err)
			}

			if tt.src != nil {
				src = tt.src(src, s)
			}
			ctx := t.Context()
			if tt.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tt.ctx(ctx)
				defer cancel()
			}
			s.set(tt.handler)
			res, err := Fetch(ctx, s.Client(), src, dir)
			if err == nil {
				t.Fatalf("want an error, got %+v", res)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "osv-debian") {
				t.Errorf("error %q does not name the source and %q", err, tt.want)
			}
			checkFile(t, good.Path, v1)
			if b, _ := os.ReadFile(metaPath(good.Path)); !bytes.Equal(b, oldMeta) {
				t.Errorf("metadata changed:\n%s\nwant\n%s", b, oldMeta)
			}
			checkNoTemp(t, dir)
		})
	}
}

func TestFetchInvalidSource(t *testing.T) {
	for _, src := range []Source{
		{Name: "../evil", URL: "https://example.invalid/x.zip", Format: FormatOSVZip},
		{Name: "ok", URL: "file:///etc/passwd", Format: FormatOSVZip},
		{Name: "ok", URL: "https://example.invalid/x.zip", Format: "tar"},
		{Name: "ok", URL: "https://example.invalid/x.zip", Format: FormatOSVZip, SHA256URL: "ftp://x/y"},
		{Name: "ok", URL: "https://example.invalid/x.zip", Format: FormatOSVZip, MaxSize: -1},
	} {
		dir := t.TempDir()
		if _, err := Fetch(t.Context(), nil, src, dir); err == nil {
			t.Errorf("%+v: want an error", src)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%+v: wrote %v", src, ents)
		}
	}
}

func TestFetchAll(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	good := osvZip(t, "MAMORI-TEST-1")
	rec, err := os.ReadFile("testdata/osv-record.json")
	if err != nil {
		t.Fatal(err)
	}
	s.set(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a.zip", "/c.zip":
			w.Write(good)
		case "/d.json":
			w.Write(rec)
		default:
			http.Error(w, "gone", http.StatusGone)
		}
	})
	srcs := []Source{
		{Name: "a", URL: s.URL + "/a.zip", Format: FormatOSVZip},
		{Name: "b", URL: s.URL + "/b.zip", Format: FormatOSVZip},
		{Name: "c", URL: s.URL + "/c.zip", Format: FormatOSVZip},
		{Name: "d", URL: s.URL + "/d.json", Format: FormatOSVJSON},
		{Name: "e", URL: s.URL + "/e.yaml", Format: FormatAlpineSecDB},
	}
	res, err := FetchAll(t.Context(), s.Client(), srcs, dir, 2)
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FailedError", err)
	}
	if got := strings.Join(fe.Failed, ","); got != "b,e" || fe.Total != 5 {
		t.Errorf("failed = %s of %d", got, fe.Total)
	}
	if msg := err.Error(); !strings.Contains(msg, "2 of 5 sources failed (b, e)") || !strings.Contains(msg, "410 Gone") {
		t.Errorf("message: %s", msg)
	}
	if len(res) != len(srcs) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Source.Name != srcs[i].Name {
			t.Errorf("result %d is for %s", i, r.Source.Name)
		}
	}
	checkFile(t, res[0].Path, good)
	checkFile(t, res[2].Path, good)
	checkFile(t, res[3].Path, rec)

	s.set(func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	if _, err := FetchAll(t.Context(), s.Client(), srcs[:3], dir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := FetchAll(t.Context(), s.Client(), []Source{srcs[0], srcs[0]}, dir, 1); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, tmpPrefix("a.zip")+"1")
	fresh := filepath.Join(dir, tmpPrefix("a.zip")+"2")
	other := filepath.Join(dir, tmpPrefix("b.zip")+"1")
	for _, p := range []string{old, fresh, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleAge)
	os.Chtimes(old, past, past)
	os.Chtimes(other, past, past)
	removeStale(dir, "a.zip")
	for p, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes (sha256 %s), want %d bytes (sha256 %s)", path, len(got), sha(got), len(want), sha(want))
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
