package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure Serve.
type Options struct {
	// Listen is the HTTPS address, e.g. ":9443".
	Listen string
	// Config reaches the API server.
	Config *rest.Config
	// TLSDir holds tls.crt and tls.key made by someone else (cert-manager);
	// empty means a self-signed certificate for Hosts whose CA is put in
	// the webhook configurations named WebhookConfig.
	TLSDir        string
	Hosts         []string
	WebhookConfig string
	Log           logrus.FieldLogger
	// Server answers the reviews.
	Server *Server
	// Ready is called once the webhook serves (tests).
	Ready func(addr net.Addr)
}

// Serve serves the webhooks until ctx ends. It listens first, so that the
// CA goes into the webhook configurations only once its certificate can be
// served.
func Serve(ctx context.Context, o Options) error {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSDir != "" {
		tlsCfg.GetCertificate = DirCertificate(o.TLSDir)
	} else {
		if len(o.Hosts) == 0 || o.WebhookConfig == "" {
			return errors.New("a self-signed certificate needs the hosts it is for and the webhook configuration to put its CA in")
		}
		pair, caPEM, err := SelfSigned(o.Hosts)
		if err != nil {
			return fmt.Errorf("certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
		cs, err := kubernetes.NewForConfig(o.Config)
		if err != nil {
			return err
		}
		// Until this succeeds the API server cannot call the webhooks, and
		// (failure policy Fail) refuses what they review: retried, not fatal,
		// as the configurations may be created after this pod.
		for {
			err := InjectCABundle(ctx, cs, o.WebhookConfig, caPEM)
			if err == nil {
				break
			}
			o.Log.Warnf("putting the CA in the webhook configurations: %v (retrying)", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
		o.Log.Infof("self-signed certificate for %v; its CA is in the webhook configurations named %s", o.Hosts, o.WebhookConfig)
	}
	srv := &http.Server{Handler: o.Server.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	o.Log.Infof("serving admission reviews on https://%s", ln.Addr())
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
