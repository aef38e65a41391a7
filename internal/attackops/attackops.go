// Package attackops holds the attempts the VM attack suites share
// (enforce/bpflsm's TestBypassLSM, enforce/apparmor's TestBypassAppArmor):
// each is one operation a helper process performs on its own behalf, so
// that the enforcement under test decides it. Each takes the rest of its
// line as its argument and returns nil when the operation was done.
package attackops

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Ops are the attempts, by name.
var Ops = map[string]func(arg string) error{
	// trunc FILE: open it read-only with O_TRUNC (which empties it).
	"trunc": func(arg string) error {
		f, err := os.OpenFile(arg, os.O_RDONLY|os.O_TRUNC, 0)
		if err == nil {
			f.Close()
		}
		return err
	},
	// truncate FILE: truncate(2) it to nothing.
	"truncate": func(arg string) error { return unix.Truncate(arg, 0) },
	// unlink FILE
	"unlink": func(arg string) error { return unix.Unlink(arg) },
	// symlink TARGET PATH: make PATH a symbolic link to TARGET.
	"symlink": func(arg string) error {
		target, path, _ := strings.Cut(arg, " ")
		return os.Symlink(target, path)
	},
	// copy FROM TO: copy a program (mode 0755).
	"copy": func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o755)
	},
	// mprotect FILE: map FILE readable, then make the mapping executable.
	"mprotect": func(arg string) error {
		f, err := os.Open(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			return err
		}
		defer unix.Munmap(b)
		return unix.Mprotect(b, unix.PROT_READ|unix.PROT_EXEC)
	},
	// setxattr FILE NAME: set the extended attribute NAME on FILE.
	"setxattr": func(arg string) error {
		file, name, _ := strings.Cut(arg, " ")
		return unix.Setxattr(file, name, []byte("x"), 0)
	},
	// open-tree DIR FILE: read FILE through a detached copy of the mount
	// tree at DIR (open_tree OPEN_TREE_CLONE), named from that tree's top.
	"open-tree": func(arg string) error {
		dir, file, _ := strings.Cut(arg, " ")
		tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(tree)
		fd, err := unix.Openat(tree, file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	},
	// chroot-exec DIR PATH: run PATH in a child chrooted to DIR.
	"chroot-exec": func(arg string) error {
		dir, path, _ := strings.Cut(arg, " ")
		cmd := exec.Command(path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
		return RanOK(cmd.Run())
	},
	// chroot-run DIR PROGRAM ARGS...: run PROGRAM (a busybox applet by its
	// name) in a child chrooted to DIR.
	"chroot-run": func(arg string) error {
		f := strings.Fields(arg)
		cmd := exec.Command(f[1], f[2:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: f[0]}
		return Said(cmd)
	},
	// run PROGRAM ARGS...: run a program that tells a refusal only in its
	// output (Said).
	"run": func(arg string) error {
		f := strings.Fields(arg)
		return Said(exec.Command(f[0], f[1:]...))
	},
	// memfd FILE: copy FILE into a memfd and execute that.
	"memfd": func(arg string) error {
		b, err := os.ReadFile(arg)
		if err != nil {
			return err
		}
		fd, err := unix.MemfdCreate("payload", 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, b); err != nil {
			return err
		}
		return RanOK(exec.Command(fmt.Sprintf("/proc/self/fd/%d", fd), "true").Run())
	},
}

// Said runs a program that tells a refusal only in its output (busybox,
// the dynamic loader; their status says no more): EPERM for "Operation not
// permitted" (BPF-LSM's), EACCES for "Permission denied" or the loader's
// "failed to map segment" (AppArmor's), another error when it failed
// else.
func Said(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	switch s := string(out); {
	case strings.Contains(s, "Operation not permitted"):
		return syscall.EPERM
	case strings.Contains(s, "Permission denied"), strings.Contains(s, "failed to map segment"):
		return syscall.EACCES
	case err != nil:
		return fmt.Errorf("%v: %q", err, out)
	}
	return nil
}

// RanOK treats a program that ran and exited non-zero as run.
func RanOK(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ProcessState != nil {
		return nil
	}
	return err
}

// BypassPolicy is the attack suites' policy, its files below dir: process
// Blocks on dir/bin/blocked, a script and a dynamically linked program;
// file Blocks on dir/secret, dir/ro (readOnly) and dir/preload; a Block
// on the net_raw capability. Both suites use it, so that their outcomes
// compare.
func BypassPolicy(dir string) string {
	return strings.ReplaceAll(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: bypass, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  process:
    matchPaths:
    - path: DIR/bin/blocked
    - path: DIR/bin/blocked-script
    - path: DIR/bin/dyn-blocked
  file:
    matchPaths:
    - path: DIR/secret
    - path: DIR/ro
      readOnly: true
    - path: DIR/preload
  capabilities:
    matchCapabilities:
    - capability: net_raw
  action: Block
`, "DIR", dir)
}

// FromSourcePolicy allows /tmp/vmfs/secret only to /tmp/vmfs/bin/cat.
const FromSourcePolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: only-cat, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmfs/secret
      fromSource: [{path: /tmp/vmfs/bin/cat}]
      action: Allow
    - path: /tmp/vmfs/secret
      action: Block
`

// DeepName is one level of a deep tree: 200 bytes, so that 21 levels
// pass PATH_MAX (4,096).
var DeepName = strings.Repeat("d", 200)

// DeepTree makes root/DeepName/DeepName/… as many levels deep as the
// largest of levels, with a copy of busybox (x) and a file (secret) at
// each of levels — paths no system call takes whole (past PATH_MAX):
// reached by a chdir per level.
func DeepTree(root string, levels ...int) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	for i := 1; i <= slices.Max(levels); i++ {
		if err := unix.Mkdirat(fd, DeepName, 0o755); err != nil && err != unix.EEXIST {
			return err
		}
		next, err := unix.Openat(fd, DeepName, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
		fd = next
		if !slices.Contains(levels, i) {
			continue
		}
		for name, data := range map[string][]byte{"x": bb, "secret": []byte("x")} {
			w, err := unix.Openat(fd, name, unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, 0o755)
			if err != nil {
				return err
			}
			_, err = unix.Write(w, data)
			unix.Close(w)
			if err != nil {
				return err
			}
		}
	}
	return nil
}
