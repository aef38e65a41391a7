package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// certValidity is how long a self-made certificate is valid. The webhook
// makes a new one at every start; a year outlives any pod.
const certValidity = 365 * 24 * time.Hour

// SelfSigned makes a CA and a serving certificate signed by it for hosts
// (DNS names or IP addresses). It returns the serving pair and the CA's
// PEM, for the webhook configurations' caBundle.
func SelfSigned(hosts []string) (tls.Certificate, []byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "nri-armor-webhook CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return pair, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// ServiceHosts are the names the API server calls a webhook Service by.
func ServiceHosts(service, namespace string) []string {
	return []string{service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}
}

// InjectCABundle puts caPEM in every webhook of the validating and the
// mutating webhook configuration named name (either may be absent, not
// both), so that the API server trusts the certificate this process
// serves.
func InjectCABundle(ctx context.Context, cs kubernetes.Interface, name string, caPEM []byte) error {
	found := 0
	vs := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if v, err := vs.Get(ctx, name, metav1.GetOptions{}); err == nil {
		found++
		for i := range v.Webhooks {
			v.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if _, err := vs.Update(ctx, v, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
		}
	} else if !errors.IsNotFound(err) {
		return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
	}
	ms := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if m, err := ms.Get(ctx, name, metav1.GetOptions{}); err == nil {
		found++
		for i := range m.Webhooks {
			m.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if _, err := ms.Update(ctx, m, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
		}
	} else if !errors.IsNotFound(err) {
		return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
	}
	if found == 0 {
		return fmt.Errorf("no ValidatingWebhookConfiguration or MutatingWebhookConfiguration named %s", name)
	}
	return nil
}

// DirCertificate serves the pair tls.crt and tls.key of dir (a mounted
// Secret, as cert-manager writes it), read again when the files change so
// that a renewed certificate is served without a restart.
func DirCertificate(dir string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var mu sync.Mutex
	var cached *tls.Certificate
	var at time.Time
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		// The kubelet updates a Secret volume by swapping a symlink; a
		// short cache spares a read per handshake.
		if cached != nil && time.Since(at) < 10*time.Second {
			return cached, nil
		}
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		if err != nil {
			if cached != nil {
				return cached, nil // keep serving the last good pair
			}
			return nil, err
		}
		cached, at = &pair, time.Now()
		return cached, nil
	}
}
