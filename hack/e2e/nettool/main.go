package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage", fmt.Errorf("nettool raw | udp | connect HOST:PORT"))
	}
	switch op := os.Args[1]; op {
	case "raw", "udp":
		typ, proto := syscall.SOCK_RAW, syscall.IPPROTO_ICMP
		if op == "udp" {
			typ, proto = syscall.SOCK_DGRAM, 0
		}
		fd, err := syscall.Socket(syscall.AF_INET, typ, proto)
		if err != nil {
			fail("socket "+op, err)
		}
		syscall.Close(fd)
		fmt.Printf("ok: %s socket created\n", op)
	case "connect":
		if len(os.Args) != 3 {
			fail("usage", fmt.Errorf("nettool connect HOST:PORT"))
		}
		c, err := net.DialTimeout("tcp4", os.Args[2], 5*time.Second)
		if err != nil {
			fail("connect "+os.Args[2], err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fail("read", err)
		}
		fmt.Printf("ok: connected to %s, read %q\n", os.Args[2], strings.TrimSpace(line))
	case "sys":
		if len(os.Args) < 3 {
			fail("usage", fmt.Errorf("nettool sys getcpu|getpgid|personality|open_tree|fsopen [hold]"))
		}
		name := os.Args[2]
		call, ok := calls[name]
		if !ok {
			fail("usage", fmt.Errorf("unknown system call %q", name))
		}
		_, _, errno := syscall.RawSyscall(call[0], call[1], 0, 0)
		if len(os.Args) > 3 && os.Args[3] == "hold" {
			// Alive while armor-tracer attributes the kernel's log record
			// (its pid → cgroup) to the container.
			time.Sleep(2 * time.Second)
		}
		if errno != 0 {
			fail("sys "+name, errno)
		}
		fmt.Printf("ok: %s\n", name)
	default:
		fail("usage", fmt.Errorf("unknown operation %q", op))
	}
}

// calls are the system calls "nettool sys" makes: number and first
// argument. personality(ADDR_NO_RANDOMIZE) is what the runtime default
// refuses (it allows only a few personalities); getcpu and getpgid it
// allows. open_tree(AT_FDCWD, NULL) and fsopen(NULL) make no mount
// tree: a filter that lets them through shows as EFAULT, one that
// refuses them as EPERM.
var calls = map[string][2]uintptr{
	"getcpu":      {309, 0}, // x86_64; the syscall package lacks it,
	"getpgid":     {syscall.SYS_GETPGID, 0},
	"personality": {syscall.SYS_PERSONALITY, 0x0040000},
	"open_tree":   {428, uintptr(0xffffffffffffff9c)}, // AT_FDCWD; 428 on x86_64 and arm64
	"fsopen":      {430, 0},
}

func fail(op string, err error) {
	fmt.Fprintf(os.Stderr, "nettool: %s: %v\n", op, err)
	os.Exit(1)
}
