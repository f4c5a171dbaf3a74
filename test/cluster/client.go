package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// RESTConfig is the cluster-admin client configuration.
func (c Config) RESTConfig() *rest.Config {
	pki := c.state("pki")
	return &rest.Config{
		Host: c.APIServerURL(),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: pki + "/ca.crt", CertFile: pki + "/admin.crt", KeyFile: pki + "/admin.key",
		},
		QPS: 50, Burst: 100, Timeout: 30 * time.Second,
	}
}

// Clientset is a cluster-admin clientset.
func (c Config) Clientset() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

// Kubectl runs ./bin/kubectl with the admin kubeconfig and returns its
// combined output.
func (c Config) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), append([]string{"--kubeconfig", c.AdminKubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// poll calls check every interval until it reports done, returns an error,
// or ctx ends; what names the wait in the timeout error.
func poll(ctx context.Context, what string, interval time.Duration, check func(context.Context) (bool, error)) error {
	var last error
	for {
		done, err := check(ctx)
		if done && err == nil {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, what, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, what, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitAPIServer waits until the API server reports ready.
func (c Config) waitAPIServer(ctx context.Context, cs kubernetes.Interface) error {
	return poll(ctx, "kube-apiserver /readyz", 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
}

// waitNodeReady waits until the node reports the Ready condition.
func (c Config) waitNodeReady(ctx context.Context, cs kubernetes.Interface) error {
	return poll(ctx, "node "+c.NodeName+" Ready", 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		return c.nodeReady(ctx, cs)
	})
}

func (c Config) nodeReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	node, err := cs.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return true, nil
			}
			return false, fmt.Errorf("node not ready: %s", cond.Message)
		}
	}
	return false, nil
}

// waitDNS waits until CoreDNS resolves the kubernetes Service.
func (c Config) waitDNS(ctx context.Context) error {
	r := c.resolver()
	return poll(ctx, "cluster DNS", 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := r.LookupHost(ctx, "kubernetes.default.svc.cluster.local")
		if err != nil {
			return false, err
		}
		return len(addrs) == 1 && addrs[0] == c.KubernetesServiceIP, nil
	})
}

// resolver asks the cluster DNS server on the bridge and nothing else.
func (c Config) resolver() *net.Resolver {
	server := net.JoinHostPort(c.NodeIP, "53")
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// waitWorkloads waits until the named Deployments and StatefulSets
// ("deployment/ns/name", "statefulset/ns/name") have all replicas ready.
func (c Config) waitWorkloads(ctx context.Context, cs kubernetes.Interface, workloads ...string) error {
	for _, w := range workloads {
		parts := strings.SplitN(w, "/", 3)
		err := poll(ctx, w+" ready", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
			switch parts[0] {
			case "deployment":
				d, err := cs.AppsV1().Deployments(parts[1]).Get(ctx, parts[2], metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return d.Status.ReadyReplicas >= 1 && d.Status.ReadyReplicas == d.Status.Replicas, nil
			default:
				s, err := cs.AppsV1().StatefulSets(parts[1]).Get(ctx, parts[2], metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return s.Status.ReadyReplicas >= 1 && s.Status.ReadyReplicas == s.Status.Replicas, nil
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}
