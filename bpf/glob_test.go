package bpf

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
	for _, p := range []string{"/etc/[ab]", "/x/{a,b}", "/a/**/b", "relative/*", `/a\*`} {
		if _, why := splitKernelGlob(p); why == "" {
			t.Errorf("%s: kernel form accepted, want it reported", p)
		}
	}
}

// FuzzKernelGlob: wherever a pattern has a kernel form, the kernel's
// algorithm agrees with the reference matcher (policy.CompileGlob).
func FuzzKernelGlob(f *testing.F) {
	f.Add("/a/*b?/c**", "/a/xbz/cdef/g")
	f.Add("/*/*", "/x/y")
	f.Add("/a*a*a*b", "/aaaaaaaaaaaaaaaaaaab")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		g, why := splitKernelGlob(pattern)
		if why != "" {
			return
		}
		ref, err := policy.CompileGlob(pattern)
		if err != nil {
			return
		}
		if got, want := kernelGlobMatches(g, path), ref.Match(path); got != want {
			t.Fatalf("%q ~ %q: kernel %t, reference %t (prefix %q rest %q tail %t)", pattern, path, got, want, g.prefix, g.rest, g.tail)
		}
	})
}
