// kindnetd-lite: the kind suite's stand-in for kind's kindnetd, whose module the Go module proxy
// does not serve. It does what a kind cluster needs from kindnetd, no more:
//  1. writes /etc/cni/net.d/10-kindnet.conflist (ptp + host-local on this node's podCIDR + portmap);
//  2. keeps a route to every other node's podCIDR through that node's InternalIP.
//
// Pod egress is masqueraded by the ptp plugin (ipMasq). No NetworkPolicy: the production suite runs
// sigs.k8s.io/kube-network-policies beside it for that.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const confPath = "/etc/cni/net.d/10-kindnet.conflist"

func conflist(cidr string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "kindnet",
  "plugins": [
    { "type": "ptp", "ipMasq": true, "mtu": 1500,
      "ipam": { "type": "host-local", "dataDir": "/run/cni-ipam-state",
                "routes": [ { "dst": "0.0.0.0/0" } ],
                "ranges": [ [ { "subnet": %q } ] ] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
`, cidr)
}

func internalIPv4(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
			return a.Address
		}
	}
	return ""
}

// writeOnce writes the CNI config atomically, only when it differs.
func writeOnce(cidr string) error {
	want := conflist(cidr)
	if have, err := os.ReadFile(confPath); err == nil && string(have) == want {
		return nil
	}
	tmp := confPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return err
	}
	log.Printf("CNI config for podCIDR %s", cidr)
	return os.Rename(tmp, confPath)
}

func routeTo(cidr, via string) error {
	_, dst, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: net.ParseIP(via)})
}

func main() {
	self := os.Getenv("HOST_IP")
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	// The Service VIP answers only once kube-proxy runs: fail fast and retry.
	cfg.Timeout = 5 * time.Second
	client := kubernetes.NewForConfigOrDie(cfg)
	log.Printf("kindnetd-lite on %s", self)
	for {
		nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			log.Printf("listing nodes: %v", err)
		} else {
			for i := range nodes.Items {
				n := &nodes.Items[i]
				ip, cidr := internalIPv4(n), n.Spec.PodCIDR
				switch {
				case ip == "" || cidr == "":
				case ip == self:
					if err := writeOnce(cidr); err != nil {
						log.Printf("CNI config: %v", err)
					}
				default:
					if err := routeTo(cidr, ip); err != nil {
						log.Printf("route to %s via %s: %v", cidr, ip, err)
					}
				}
			}
		}
		time.Sleep(5 * time.Second)
	}
}
