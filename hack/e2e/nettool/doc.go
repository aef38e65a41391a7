// Command nettool is the e2e tests' probe inside containers: it performs one
// network operation (or system call) and prints a line the tests can match, with the errno's
// text when the kernel refuses (busybox's ping and nc hide which system call
// failed, and may fall back to another socket type).
//
//	nettool raw                 socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
//	nettool udp                 socket(AF_INET, SOCK_DGRAM, 0)
//	nettool connect HOST:PORT   a TCP connect, then reads one line
//	nettool sys NAME [hold]     one system call (getcpu, getpgid,
//	                            personality(ADDR_NO_RANDOMIZE)); hold: stay
//	                            2 s after it
//
// It prints "ok: ..." and exits 0, or "nettool: OP: ERROR" and exits 1.
package main
