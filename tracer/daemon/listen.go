package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/tracer/stream"
)

// listen listens on addr: host:port (TCP), or unix:PATH, a unix socket
// that only its owner (root) may connect to. A socket file left by an
// earlier run that nobody answers on any more is replaced; one that
// answers, or a file that is not a socket, is an error.
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another server answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// The socket is created 0600, not chmod-ed after bind: no moment in
	// which anyone else could connect. The umask is the process's; what
	// another goroutine creates meanwhile only gets fewer permissions.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	return ln, err
}

// peerContext names a unix socket's peer by its uid (SO_PEERCRED), for
// the stream's per-peer limit: every peer's remote address is the same
// there. A TCP peer is named by its remote host (stream.Hub's default).
func peerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	peer := "uid:unknown"
	if raw, err := uc.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				peer = "uid:" + strconv.FormatUint(uint64(cred.Uid), 10)
			}
		})
	}
	return stream.WithPeer(ctx, peer)
}

// maxTokenBytes bounds a token file.
const maxTokenBytes = 4096

// readToken reads a bearer token: the file's content without surrounding
// white space (a trailing newline, as echo and most editors write it).
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%s holds no token", path)
	case len(b) > maxTokenBytes:
		return nil, fmt.Errorf("%s: a token longer than %d bytes", path, maxTokenBytes)
	}
	return b, nil
}

// bearer lets through only the requests that present the token of file
// (Authorization: Bearer TOKEN); others get 401. The file is re-read at
// every request: a rotated token (a Secret's volume is updated in place)
// takes effect without a restart, and stream requests are few. A file
// that cannot be read refuses every request (503) and is logged.
type bearer struct {
	file string
	next http.Handler
	log  logrus.FieldLogger

	mu      sync.Mutex
	lastErr string // logged once, not at every request
}

func (b *bearer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want, err := readToken(b.file)
	if err != nil {
		b.mu.Lock()
		if err.Error() != b.lastErr {
			b.lastErr = err.Error()
			b.log.Warnf("streamTokenFile: %v: refusing every stream request", err)
		}
		b.mu.Unlock()
		http.Error(w, "the stream's token cannot be read", http.StatusServiceUnavailable)
		return
	}
	if !tokenEqual(bearerToken(r), want) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="armor-tracer"`)
		http.Error(w, "a bearer token is required (armorctl logs --token-file)", http.StatusUnauthorized)
		return
	}
	b.next.ServeHTTP(w, r)
}

// bearerToken is the token of r's Authorization header (the scheme is
// case-insensitive), or nil.
func bearerToken(r *http.Request) []byte {
	h := r.Header.Get("Authorization")
	if len(h) < len("Bearer ") || !strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return nil
	}
	return []byte(strings.TrimSpace(h[len("Bearer "):]))
}

// tokenEqual compares in constant time, lengths included: it compares
// digests, so neither how much of a guess matches nor the token's length
// shows in the time taken.
func tokenEqual(got, want []byte) bool {
	if got == nil {
		return false
	}
	g, w := sha256.Sum256(got), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
