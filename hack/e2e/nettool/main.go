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
	default:
		fail("usage", fmt.Errorf("unknown operation %q", op))
	}
}

func fail(op string, err error) {
	fmt.Fprintf(os.Stderr, "nettool: %s: %v\n", op, err)
	os.Exit(1)
}
