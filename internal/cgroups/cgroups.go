// Package cgroups finds cgroup v2 facts: where the hierarchy is mounted and
// the id (the directory's inode) of a cgroup, which is what the BPF
// programs see as bpf_get_current_cgroup_id().
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// OfPID returns the cgroup v2 directory and id of process pid, from the
// "0::" line of /proc/PID/cgroup joined to the cgroup2 mount.
func OfPID(pid int) (string, uint64, error) {
	root, err := Mount()
	if err != nil {
		return "", 0, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			dir := filepath.Join(root, rel)
			id, err := ID(dir)
			return dir, id, err
		}
	}
	return "", 0, fmt.Errorf("process %d has no cgroup v2 membership in /proc/%d/cgroup", pid, pid)
}
