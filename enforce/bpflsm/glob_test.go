package bpflsm

import (
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// kernelGlobAgrees matches path with the kernel's algorithm, as the
// programs do: the prefix must be a directory prefix of path.
func kernelGlobMatches(g kernelGlob, path string) bool {
	return strings.HasPrefix(path, g.prefix) && globMatch(g.rest, path[len(g.prefix):], g.tail)
}

func kernelGlobsMatch(gs []kernelGlob, path string) bool {
	for _, g := range gs {
		if kernelGlobMatches(g, path) {
			return true
		}
	}
	return false
}

func TestKernelGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/etc/*.conf", "/etc/a.conf", true},
		{"/etc/*.conf", "/etc/sub/a.conf", false},
		{"/etc/*.conf", "/etc/.conf", true},
		{"/var/log/**", "/var/log/a/b/c", true},
		{"/var/log/**", "/var/log/", true},
		{"/var/log/**", "/var/log", false},
		{"/home/*/.ssh/**", "/home/u/.ssh/id", true},
		{"/home/*/.ssh/**", "/home/u/v/.ssh/id", false},
		{"/tmp/?", "/tmp/a", true},
		{"/tmp/?", "/tmp/ab", false},
		{"/tmp/a?c", "/tmp/a/c", false},
		{"/*/apt-get install *", "/usr/apt-get install x", true},
		{"/bin/*sh", "/bin/bash", true},
		{"/bin/*sh", "/bin/sh", true},
		{"/bin/*sh", "/bin/shx", false},
		{"/a*b*c", "/axxbyyc", true},
		{"/a*b*c", "/axxbyy/c", false},
		{"/usr/*/lib*/**", "/usr/x/lib64/a/b", true},
	} {
		g, why := splitKernelGlob(c.pattern)
		if why != "" {
			t.Fatalf("%s: %s", c.pattern, why)
		}
		if got := kernelGlobMatches(g, c.path); got != c.want {
			t.Errorf("%s ~ %s: %t, want %t", c.pattern, c.path, got, c.want)
		}
		ref, _ := policy.CompileGlob(c.pattern)
		if ref.Match(c.path) != c.want {
			t.Errorf("%s ~ %s: reference says %t", c.pattern, c.path, !c.want)
		}
	}
	for _, p := range []string{"/etc/[^ab]", "/a/**/b", "relative/*", `/a\*`, "/{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}"} {
		if _, why := kernelGlobs(p); why == "" {
			t.Errorf("%s: kernel form accepted, want it reported", p)
		}
	}
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/home/*/.ssh/{id_rsa,id_ed25519}", "/home/u/.ssh/id_rsa", true},
		{"/home/*/.ssh/{id_rsa,id_ed25519}", "/home/u/.ssh/id_dsa", false},
		{"/etc/[ab]*.conf", "/etc/b1.conf", true},
		{"/etc/[a-c]x", "/etc/cx", true},
		{"/etc/[a-c]x", "/etc/dx", false},
		{"/{usr/,}bin/{ba,}sh", "/usr/bin/bash", true},
		{"/{usr/,}bin/{ba,}sh", "/bin/sh", true},
	} {
		gs, why := kernelGlobs(c.pattern)
		if why != "" {
			t.Fatalf("%s: %s", c.pattern, why)
		}
		if got := kernelGlobsMatch(gs, c.path); got != c.want {
			t.Errorf("%s ~ %s: %t, want %t", c.pattern, c.path, got, c.want)
		}
	}
}

// FuzzKernelGlob: wherever a pattern has a kernel form, the kernel's
// algorithm agrees with the reference matcher (policy.CompileGlob).
func FuzzKernelGlob(f *testing.F) {
	f.Add("/a/*b?/c**", "/a/xbz/cdef/g")
	f.Add("/*/*", "/x/y")
	f.Add("/a*a*a*b", "/aaaaaaaaaaaaaaaaaaab")
	f.Add("/x/{a,b[0-3]}/*.c", "/x/b2/y.c")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		gs, why := kernelGlobs(pattern)
		if why != "" {
			return
		}
		ref, err := policy.CompileGlob(pattern)
		if err != nil {
			return
		}
		if got, want := kernelGlobsMatch(gs, path), ref.Match(path); got != want {
			t.Fatalf("%q ~ %q: kernel %t, reference %t (%+v)", pattern, path, got, want, gs)
		}
	})
}
