package k8stest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The harness's own checks, without binaries (they run in make unit).

func TestBinDirMissingNamesBuildScript(t *testing.T) {
	dir := t.TempDir()
	_, err := BinDir(Options{CacheDir: dir})
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("BinDir of an empty cache: %v, want ErrNotBuilt", err)
	}
	for _, want := range []string{"hack/k8s/build.sh", SkipVar, "kube-apiserver", "etcd", "kubectl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// Start fails the same way, before creating anything.
	if _, err := Start(Options{CacheDir: dir}); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Start without binaries: %v", err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range Binaries {
		if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := BinDir(Options{CacheDir: dir}); err != nil || got != bin {
		t.Errorf("BinDir with the binaries: %q, %v", got, err)
	}
}

func TestPKI(t *testing.T) {
	p, err := newPKI()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	parse := func(pemData []byte) *x509.Certificate {
		b, _ := pem.Decode(pemData)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	serving := parse(p.servingCertPEM)
	for _, name := range []string{"127.0.0.1", "localhost", "::1", "kubernetes.default.svc"} {
		if _, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	admin := parse(p.adminCertPEM)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate: %v", err)
	}
	if admin.Subject.CommonName != AdminUser || len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin subject %v, want CN %s O system:masters", admin.Subject, AdminUser)
	}
	files, err := p.write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 7 {
		t.Errorf("wrote %d files", len(files))
	}
}
