package k8stest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pki is what Start generates for one cluster: a CA, the API server's
// serving certificate, an admin client certificate (group system:masters)
// and the service-account signing key. ECDSA P-256 throughout: generating it
// takes microseconds, where RSA 2048 takes a noticeable part of startup.
type pki struct {
	caPEM, servingCertPEM, servingKeyPEM []byte
	adminCertPEM, adminKeyPEM            []byte
	saKeyPEM, saPubPEM                   []byte

	// The CA's certificate and key stay with the cluster, which issues
	// more client certificates on demand (Cluster.UserKubeconfig).
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	mu     sync.Mutex // serial
	serial int64
}

func newPKI() (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nri-armor-k8stest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	p := &pki{caPEM: pemBlock("CERTIFICATE", caDER), ca: ca, caKey: caKey, serial: 1}

	// The names a client may use for the API server: the loopback address it
	// listens on, and the in-cluster names of the kubernetes Service (which
	// webhooks and agents configured for a real cluster may use).
	p.servingCertPEM, p.servingKeyPEM, err = p.leaf(pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(serviceIP)})
	if err != nil {
		return nil, err
	}
	// The client certificate's organisation is its group: system:masters
	// passes every authorizer, as kubeadm's admin.conf does.
	p.adminCertPEM, p.adminKeyPEM, err = p.leaf(pkix.Name{CommonName: AdminUser, Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p.saKeyPEM, p.saPubPEM = pemBlock("EC PRIVATE KEY", saDER), pemBlock("PUBLIC KEY", saPubDER)
	return p, nil
}

// leaf issues a certificate signed by the CA, with a fresh key, for a
// subject (a client's user name and groups, or a server's names).
func (p *pki) leaf(subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// write puts the files the API server reads into dir and returns their paths.
func (p *pki) write(dir string) (map[string]string, error) {
	files := map[string][]byte{
		"ca.crt":      p.caPEM,
		"serving.crt": p.servingCertPEM,
		"serving.key": p.servingKeyPEM,
		"admin.crt":   p.adminCertPEM,
		"admin.key":   p.adminKeyPEM,
		"sa.key":      p.saKeyPEM,
		"sa.pub":      p.saPubPEM,
	}
	paths := map[string]string{}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("k8stest: %w", err)
		}
		paths[name] = path
	}
	return paths, nil
}
