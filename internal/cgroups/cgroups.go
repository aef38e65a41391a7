package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Mount returns the cgroup v2 mount point: /sys/fs/cgroup on a pure v2
// host, /sys/fs/cgroup/unified on a hybrid one.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// ID returns the id of the cgroup at dir.
func ID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// IDOfPID returns the cgroup v2 id (the inode of its directory) of the
// cgroup that process pid is in: the "0::" line of <proc>/<pid>/cgroup joined
// to the cgroup2 mount point cgroup2.
func IDOfPID(proc, cgroup2 string, pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no process (pid %d) to find the cgroup of", pid)
	}
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return 0, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	defer f.Close()
	rel, found := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel, found = r, true
			break
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	if !found {
		return 0, fmt.Errorf("cgroup of pid %d: no cgroup v2 (0::) line", pid)
	}
	if !strings.HasPrefix(rel, "/") || strings.Contains(rel, "/../") || strings.HasSuffix(rel, "/..") {
		return 0, fmt.Errorf("cgroup of pid %d: path %q is outside this cgroup namespace", pid, rel)
	}
	if rel == "/" {
		return 0, fmt.Errorf("cgroup of pid %d: the process is in the root cgroup, not a container's", pid)
	}
	dir := filepath.Join(cgroup2, rel)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return st.Ino, nil
}
