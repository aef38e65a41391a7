// Command pause is the e2e tests' sandbox ("pause") image: it holds the pod's
// namespaces open until it is told to stop, and reaps orphans as PID 1 does.
// A registry's pause image is out of reach here; this is built locally by
// hack/e2e/setup.sh (CGO_ENABLED=0, so the image needs nothing else).
package main
