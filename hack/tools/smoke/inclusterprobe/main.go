// Command inclusterprobe checks, from inside a pod, what reroll needs of
// the cluster it runs in: rest.InClusterConfig (the "kubernetes" Service's
// KUBERNETES_SERVICE_HOST and _PORT, the ServiceAccount's token and CA)
// reaches kube-apiserver, which knows the pod's ServiceAccount. It prints
// one line, "inclusterprobe: ok host=... version=... user=...", or
// "inclusterprobe: failed: ..." and exits 1. With --wait it then sleeps
// until SIGTERM, so that a test can exec it again in the running pod.
//
// The smoke tests build it statically and mount it into a pod.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// main runs the check and, with --wait, waits for SIGTERM.
func main() {
	wait := flag.Bool("wait", false, "after the check, sleep until SIGTERM")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	line, err := check(ctx)
	if err != nil {
		fmt.Printf("inclusterprobe: failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("inclusterprobe: ok " + line)
	if *wait {
		<-ctx.Done()
	}
}

// check asks kube-apiserver, with the in-cluster config, for its version
// and who the pod is, and returns both.
func check(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("version from %s: %w", cfg.Host, err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("self subject review at %s: %w", cfg.Host, err)
	}
	return fmt.Sprintf("host=%s version=%s user=%s", cfg.Host, v.GitVersion, review.Status.UserInfo.Username), nil
}
