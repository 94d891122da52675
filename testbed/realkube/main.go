// Command realkube runs a real kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver/app,
// in-process) on an embedded etcd, both on loopback, for the cube-operator testbed.
//
//	realkube --dir DIR [--port N] [--etcd-fsync] [-- EXTRA_KUBE_APISERVER_FLAGS...]
//
// Everything it makes lives under DIR: etcd's data (DIR/etcd), a CA and the serving
// certificate for 127.0.0.1/localhost, the service-account signing key, an admin client
// certificate (group system:masters) and an admin bearer token (DIR/admin.token, also in
// the static token file), and DIR/kubeconfig. Once /readyz answers 200 it writes the
// kubeconfig and prints exactly one line to stdout:
//
//	READY https://127.0.0.1:PORT DIR/kubeconfig
//
// Logs (etcd's and the apiserver's) go to stderr. SIGTERM or SIGINT stops the apiserver
// (its graceful shutdown) and then etcd, and the process exits 0.
//
// No controller-manager runs: nothing garbage-collects ownerReferences, namespaces
// stay Terminating, no "default" ServiceAccount appears in new namespaces.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/cli/globalflag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register"          // as cmd/kube-apiserver does
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as cmd/kube-apiserver does
	_ "k8s.io/component-base/metrics/prometheus/version"  // as cmd/kube-apiserver does
	"k8s.io/component-base/zpages/flagz"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	_ "time/tzdata" // as cmd/kube-apiserver does (CronJob time zones)
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "realkube: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "directory for etcd data, keys, certificates and the kubeconfig (required)")
	port := flag.Int("port", 0, "secure port for the apiserver on 127.0.0.1 (0: a free one)")
	etcdFsync := flag.Bool("etcd-fsync", false, "let etcd fsync its WAL (off by default: a testbed, not a cluster)")
	readyTimeout := flag.Duration("ready-timeout", 3*time.Minute, "give up when /readyz is not 200 by then")
	keepData := flag.Bool("keep-data", false, "reuse DIR/etcd from an earlier run (else it is emptied: every start is a fresh cluster)")
	serviceRange := flag.String("service-cluster-ip-range", "10.0.0.0/24", "service CIDR")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: realkube --dir DIR [--port N] [-- EXTRA_KUBE_APISERVER_FLAGS...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		return errors.New("--dir is required")
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(absDir, 0o700); err != nil {
		return err
	}

	// One handler for the whole process: the first signal cancels ctx (apiserver
	// shutdown, then etcd), a second one exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		klog.Info("realkube: signal received, shutting down")
		cancel()
		<-sigs
		os.Exit(1)
	}()

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen for the apiserver: %w", err)
	}
	apiPort := ln.Addr().(*net.TCPAddr).Port

	pki, err := makePKI(absDir, *serviceRange)
	if err != nil {
		return fmt.Errorf("keys and certificates: %w", err)
	}

	if !*keepData {
		if err := os.RemoveAll(filepath.Join(absDir, "etcd")); err != nil {
			ln.Close()
			return err
		}
	}
	etcd, etcdURL, err := startEtcd(ctx, filepath.Join(absDir, "etcd"), *etcdFsync)
	if err != nil {
		ln.Close()
		return fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		etcd.Close()
		<-etcd.Server.StopNotify()
		klog.Info("realkube: etcd stopped")
	}()

	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--etcd-servers=" + etcdURL,
		"--tls-cert-file=" + pki.ServingCert,
		"--tls-private-key-file=" + pki.ServingKey,
		"--client-ca-file=" + pki.CACert,
		"--token-auth-file=" + pki.TokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.SAKey,
		"--service-account-signing-key-file=" + pki.SAKey,
		"--service-cluster-ip-range=" + *serviceRange,
		// Without a kubelet or controller-manager there are no endpoints to keep, and
		// Endpoints may not hold a loopback address anyway.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	args = append(args, flag.Args()...)

	errCh := make(chan error, 1)
	go func() { errCh <- runAPIServer(ctx, ln, args) }()

	url := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	kubeconfig := filepath.Join(absDir, "kubeconfig")
	select {
	case err := <-errCh:
		return fmt.Errorf("kube-apiserver: %w", err)
	case err := <-etcd.Err():
		cancel()
		<-errCh
		return fmt.Errorf("etcd: %w", err)
	case err := <-waitReady(ctx, url, pki, *readyTimeout):
		if err != nil {
			cancel()
			<-errCh
			return err
		}
	}
	if err := writeKubeconfig(kubeconfig, url, pki); err != nil {
		cancel()
		<-errCh
		return err
	}
	fmt.Printf("READY %s %s\n", url, kubeconfig)
	os.Stdout.Sync()

	select {
	case err := <-errCh:
		if ctx.Err() == nil {
			return fmt.Errorf("kube-apiserver stopped: %v", err)
		}
		if err != nil {
			klog.Errorf("realkube: kube-apiserver shutdown: %v", err)
		}
	case err := <-etcd.Err():
		cancel()
		<-errCh
		return fmt.Errorf("etcd: %w", err)
	}
	klog.Info("realkube: kube-apiserver stopped")
	return nil
}

// runAPIServer does what app.NewAPIServerCommand's RunE does, with our context (so the
// caller decides when it stops) and our listener (so --port 0 has no race).
func runAPIServer(ctx context.Context, ln net.Listener, args []string) error {
	s := options.NewServerRunOptions()
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)

	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	namedFlagSets := s.Flags()
	s.Flagz = flagz.NamedFlagSetsReader{FlagSets: namedFlagSets}
	globalflag.AddGlobalFlags(namedFlagSets.FlagSet("global"), "kube-apiserver", logs.SkipLoggingConfigurationFlags())
	for _, f := range namedFlagSets.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.SecureServing.Listener = ln

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	// kube-apiserver's loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	featureGate.(featuregate.MutableFeatureGate).AddMetrics()
	s.GenericServerRunOptions.ComponentGlobalsRegistry.AddMetrics()
	return app.Run(ctx, completed)
}

func startEtcd(ctx context.Context, dataDir string, fsync bool) (*embed.Etcd, string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	cfg := embed.NewConfig()
	cfg.Name = "realkube"
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.UnsafeNoFsync = !fsync
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{"stderr"}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, "", ctx.Err()
	}
	return e, clientURL.String(), nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady polls /readyz as the admin until it answers 200.
func waitReady(ctx context.Context, base string, pki *PKI, timeout time.Duration) <-chan error {
	out := make(chan error, 1)
	go func() {
		pool := x509.NewCertPool()
		pool.AddCert(pki.caCert)
		client := &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		}
		deadline := time.Now().Add(timeout)
		last := "no answer"
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
			req.Header.Set("Authorization", "Bearer "+pki.Token)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					out <- nil
					return
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				out <- fmt.Errorf("/readyz not 200 after %s (last: %s)", timeout, last)
				return
			}
			select {
			case <-ctx.Done():
				out <- ctx.Err()
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}
