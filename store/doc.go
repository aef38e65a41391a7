// Package store is the daemon's policy store: it loads the policy files of
// configured directories, keeps the last good version of each file in force,
// watches the directories and publishes a new policy.Catalog after a change.
//
// Rules:
//
//   - Every *.yaml/*.yml file below a directory is read, recursively, in
//     lexical order. Entries whose name starts with "." are ignored: editors'
//     temporary and swap files, and the timestamped directories of a
//     Kubernetes ConfigMap volume (its files are read through their
//     symlinks).
//   - A file whose current content has any error, or defines a policy that
//     another file already has in force, is rejected whole: the policies of
//     its last good version stay in force, the rejection is logged with
//     FILE:LINE and reported once through Options.Rejected. A rejected file
//     is evaluated again on every reload, so it takes effect as soon as the
//     conflict is gone.
//   - A deleted file's policies are removed. A directory that cannot be read
//     removes nothing: its files keep their state until it can be read again.
//   - A burst of file system events (an editor writing a temporary file and
//     renaming it) within Options.Debounce is one reload.
package store
