package int80

// Supported: this architecture has the 32-bit entry.
const Supported = true

func syscall3(nr, a1, a2, a3 uintptr) uintptr
