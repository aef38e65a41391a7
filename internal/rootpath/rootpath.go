// Package rootpath resolves absolute paths inside another root filesystem
// (a container's, reached through /proc/<pid>/root, or an unpacked image),
// following symlinks as the kernel would for a process chrooted there:
// absolute links and ".." stay inside the root. nri-armor uses it to learn
// which file a rule path names in a container (policy.Aliased).
package rootpath

import (
	"os"
	"path"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// DefaultMax is how many distinct paths a Resolver resolves at most: every
// lookup costs a few system calls per path component, and a container's
// start waits for them. A set with more distinct rule paths than this gets
// aliases for the first DefaultMax only (Resolver.Skipped counts the rest).
const DefaultMax = 1024

// Resolver resolves paths inside Root and remembers its answers: a
// container's set is resolved again when its policies change, and paths
// resolved before its first instruction must keep the answer they had
// then (the container may have changed its links since).
type Resolver struct {
	root    string
	max     int
	memo    map[string]string
	skipped int
}

// New returns a resolver for root that resolves at most max distinct paths
// (DefaultMax when max <= 0).
func New(root string, max int) *Resolver {
	if max <= 0 {
		max = DefaultMax
	}
	return &Resolver{root: path.Clean(root), max: max, memo: map[string]string{}}
}

// SetRoot makes the resolver resolve in root from now on, keeping its
// answers: the same filesystem reached another way.
func (r *Resolver) SetRoot(root string) { r.root = path.Clean(root) }

// Root is the root the resolver resolves in.
func (r *Resolver) Root() string { return r.root }

// Skipped is how many lookups were not made because the bound was reached.
func (r *Resolver) Skipped() int { return r.skipped }

// Resolve returns the absolute path, inside the root, that p names once
// every symlink in it is followed; "" when p resolves to itself, does not
// exist there, loops, or is past the bound. It is a policy.Resolver.
func (r *Resolver) Resolve(p string) string {
	if to, ok := r.memo[p]; ok {
		return to
	}
	if len(r.memo) >= r.max {
		r.skipped++
		return ""
	}
	to := r.resolve(p)
	r.memo[p] = to
	return to
}

func (r *Resolver) resolve(p string) string {
	if !path.IsAbs(p) {
		return ""
	}
	// SecureJoin walks the path component by component with lstat and
	// readlink, treating root as "/" for absolute links and "..": the
	// answer cannot name a file outside the root. It fails on a loop
	// (more than 255 links), which means no alias.
	full, err := securejoin.SecureJoin(r.root, p)
	if err != nil {
		return ""
	}
	// Components past the first missing one are kept as written: a path
	// that does not exist names nothing to alias.
	if _, err := os.Lstat(full); err != nil {
		return ""
	}
	rel := full
	if r.root != "/" {
		rel = strings.TrimPrefix(full, r.root)
		if !strings.HasPrefix(rel, "/") {
			return "" // the root itself, or (never, by SecureJoin's contract) outside it
		}
	}
	if rel == p {
		return ""
	}
	return rel
}
