// Package int80 makes 32-bit system calls (int 0x80) from a 64-bit x86
// process, for tests that check that the 32-bit entry cannot pass rules
// made for the 64-bit one.
package int80

// Syscall makes system call nr of the 32-bit (i386) table with up to
// three arguments, each cut to 32 bits (pointers must lie below 4 GiB),
// and returns the kernel's result: a negative errno on failure.
func Syscall(nr, a1, a2, a3 uintptr) int32 { return int32(syscall3(nr, a1, a2, a3)) }
