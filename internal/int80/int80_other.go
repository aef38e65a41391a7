//go:build !amd64

package int80

// Supported: this architecture has no int 0x80.
const Supported = false

func syscall3(nr, a1, a2, a3 uintptr) uintptr { return ^uintptr(37) } // -ENOSYS
