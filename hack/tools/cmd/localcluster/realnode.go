package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// The real node: its name, where pods are told to go, and its addresses.
const (
	// realNodeName is the Node kubelet registers, beside kwok's fakeNodeName.
	realNodeName = "real-node-0"
	// realNodeLabel is set on the real node (value realNodeValue), so that
	// pods can select it; with kwok's node present it is also a NoSchedule
	// taint, so that only pods that tolerate it land there.
	realNodeLabel = "reroll.dev/node"
	realNodeValue = "real"
	// sandboxImage is containerd's pod sandbox ("pause") image. No registry
	// is reachable: it must be among the archives of --images.
	sandboxImage = "reroll.local/pause:1"
	// podCIDR is the real node's pod network, on its bridge. kwok hands out
	// 10.244.0.0/24 to the pods of its fake node; this is next to it.
	podCIDR = "10.244.1.0/24"
	// apiServiceIP is the "kubernetes" Service's ClusterIP (the first IP of
	// serviceCIDR). There is no kube-proxy: inside the node's network
	// namespace this address is local, and localcluster's proxy listens on
	// it (port 443) and forwards to kube-apiserver on the host's loopback.
	// Pods reach it through their default route (the bridge), kubelet
	// directly, both with the serving certificate's 10.0.0.1 SAN.
	apiServiceIP = "10.0.0.1"
	// linkPrefix is the first part of the host end of the veth pair that
	// joins the node's network namespace to the host.
	linkPrefix = "rrnode-"
	// kubeletPort is where kubelet serves (logs, exec) on the node's IP.
	kubeletPort = 10250
)

// sandboxArg, as localcluster's first argument, makes it the node
// sandbox: the first process of the real node's own mount, network and
// PID namespaces, which sets them up and runs containerd and kubelet.
const sandboxArg = "__node-sandbox"

// errNodeUnavailable says, in one line, why the real node could not
// start; the cluster goes on without it.
type errNodeUnavailable struct{ reason string }

// Error returns the reason.
func (e *errNodeUnavailable) Error() string { return e.reason }

// kubeletSysctls returns the /proc/sys files kubelet rewrites at start
// (setupKernelTunables in pkg/kubelet/cm): all global to the host, none
// per network namespace. The node sandbox bind-mounts a file of its own
// over each, so kubelet's writes stay in the sandbox.
func kubeletSysctls() []string {
	return []string{
		"vm/overcommit_memory",
		"vm/panic_on_oom",
		"kernel/panic",
		"kernel/panic_on_oops",
		"kernel/keys/root_maxkeys",
		"kernel/keys/root_maxbytes",
	}
}

// nodeLayout is where a real node's pieces live, all derived from the
// state dir, so that a later start in the same state dir finds what a
// crashed run left (its cgroups, the host end of its veth pair).
type nodeLayout struct {
	// dir is <state-dir>/node: containerd's root, kubelet's root, the
	// sandbox's /var/lib and /var/log, configs.
	dir string
	// cgroup is the parent of everything the node runs, relative to each
	// cgroup hierarchy's root: kubelet's cgroupRoot is below it.
	cgroup string
	// link is the name of the host end of the veth pair.
	link string
	// hostAddr and nodeAddr are the two addresses of the pair's /30: the
	// host end's and the node's (its InternalIP).
	hostAddr, nodeAddr netip.Prefix
}

// newNodeLayout derives the node's names and its /30 from the state dir.
// The /30 is taken from 10.250.0.0/16 by a hash of the state dir; free
// returns false for one already on the host, and the next is tried, so
// that two clusters side by side get different ones.
func newNodeLayout(stateDir string, free func(netip.Prefix) bool) (*nodeLayout, error) {
	sum := sha256.Sum256([]byte(stateDir))
	id := hex.EncodeToString(sum[:4])
	l := &nodeLayout{
		dir:    filepath.Join(stateDir, "node"),
		cgroup: "localcluster-" + id,
		link:   linkPrefix + id, // 15 bytes: the longest name a link may have
	}
	start := int(sum[4])<<8 | int(sum[5])
	for i := range 1 << 14 {
		n := (start + i) % (1 << 14) // 2^14 /30s in a /16
		base := netip.AddrFrom4([4]byte{10, 250, byte(n >> 6), byte(n&63) << 2})
		host := netip.PrefixFrom(base.Next(), 30)
		node := netip.PrefixFrom(base.Next().Next(), 30)
		if free(host.Masked()) {
			l.hostAddr, l.nodeAddr = host, node
			return l, nil
		}
	}
	return nil, fmt.Errorf("no free /30 in 10.250.0.0/16")
}

// path returns a path under the node's dir.
func (l *nodeLayout) path(elem ...string) string {
	return filepath.Join(append([]string{l.dir}, elem...)...)
}

// containerdConfig renders containerd's config (version 2, containerd
// 1.6). Every path is the node's own; the socket is in the sandbox's
// private /run. Each setting that is not a default says why.
func (l *nodeLayout) containerdConfig(runc, cniBin string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // TOML basic strings are JSON strings
	lines := []string{
		`version = 2`,
		`root = ` + q(l.path("containerd")),
		`state = "/run/containerd"`,
		// Snapshotters this host cannot have; their probes only add noise.
		`disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]`,
		`[grpc]`,
		`  address = "/run/containerd/containerd.sock"`,
		`[plugins]`,
		// Its default, /opt/containerd, would be created on the host.
		`  [plugins."io.containerd.internal.v1.opt"]`,
		`    path = ` + q(l.path("opt")),
		`  [plugins."io.containerd.grpc.v1.cri"]`,
		`    sandbox_image = ` + q(sandboxImage),
		// Without CAP_SYS_RESOURCE (withheld on some hosts, e.g. this
		// project's CI) runc cannot lower a container's oom_score_adj
		// below its own, and every sandbox fails with "can't get final
		// child's PID from pipe: EOF". This keeps them at or above it.
		`    restrict_oom_score_adj = true`,
		// exec and attach streams: kubelet proxies them, inside the node.
		`    stream_server_address = "127.0.0.1"`,
		`    stream_server_port = "0"`,
		`    [plugins."io.containerd.grpc.v1.cri".containerd]`,
		`      snapshotter = "overlayfs"`,
		`      default_runtime_name = "runc"`,
		`      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
		`        runtime_type = "io.containerd.runc.v2"`,
		`        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
		`          BinaryName = ` + q(runc),
		// kubelet's cgroupDriver is cgroupfs: there is no systemd.
		`          SystemdCgroup = false`,
		`    [plugins."io.containerd.grpc.v1.cri".cni]`,
		`      bin_dir = ` + q(cniBin),
		`      conf_dir = ` + q(l.path("cni")),
		`      max_conf_num = 1`,
	}
	return strings.Join(lines, "\n") + "\n"
}

// cniConfig renders the pod network: a bridge in the node's network
// namespace, its gateway the bridge's address, host-local addresses from
// podCIDR stored under the node's dir. No IP masquerade: pods reach
// nothing beyond the node (there is no default route out of it), and so
// no iptables rule is needed at all.
func (l *nodeLayout) cniConfig() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "localcluster",
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      "cni0",
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": podCIDR}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": l.path("cni-ipam"),
			},
		}},
	}, "", "  ")
}

// kubeletConfig renders kubelet's KubeletConfiguration (JSON is YAML).
// taint adds the NoSchedule taint that keeps pods that do not ask for the
// real node on kwok's node. Each setting that is not a default says why.
func (l *nodeLayout) kubeletConfig(caFile string, taint bool) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		// Hosts with cgroup v1 (like this project's CI) are still served,
		// and there is no systemd to own the cgroups.
		"failCgroupV1": false,
		"cgroupDriver": "cgroupfs",
		// Everything kubelet creates is below the node's own cgroup, which
		// teardown removes as one tree.
		"cgroupRoot":               "/" + l.cgroup,
		"containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
		"address":                  l.nodeAddr.Addr().String(),
		"port":                     kubeletPort,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": caFile},
		},
		"authorization": map[string]any{"mode": "Webhook"},
		"podLogsDir":    l.path("pod-logs"),
		// Its default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec,
		// would be created on the host.
		"volumePluginDir": l.path("volume-plugins"),
		// Its default adds a KUBE-FIREWALL rule and re-creates it every
		// minute; there is nothing here it would protect.
		"makeIPTablesUtilChains": false,
		// Imported images cannot be pulled again: never collect them, and
		// never evict pods for a host's full disk or busy memory.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%",
		},
		"failSwapOn":          false,
		"serializeImagePulls": false,
		// Faster than the defaults (20 s, 10 s), so that a test sees a pod
		// Ready, or a rollout progress, without waiting for a resync.
		"syncFrequency":             "10s",
		"nodeStatusUpdateFrequency": "5s",
	}
	if taint {
		cfg["registerWithTaints"] = []map[string]string{{"key": realNodeLabel, "value": realNodeValue, "effect": "NoSchedule"}}
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// oneLine folds s onto one line of at most 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
