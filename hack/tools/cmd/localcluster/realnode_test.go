package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// TestNodeLayout checks that a state dir always gets the same names and
// /30, that another gets others, and that a /30 in use is skipped.
func TestNodeLayout(t *testing.T) {
	all := func(netip.Prefix) bool { return true }
	a, err := newNodeLayout("/tmp/a", all)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := newNodeLayout("/tmp/a", all)
	if *a != *again {
		t.Errorf("same state dir, different layouts: %+v, %+v", a, again)
	}
	b, _ := newNodeLayout("/tmp/b", all)
	if a.cgroup == b.cgroup || a.link == b.link || a.hostAddr == b.hostAddr {
		t.Errorf("different state dirs share a name or address: %+v, %+v", a, b)
	}
	if len(a.link) > 15 {
		t.Errorf("link name %q is longer than a link name may be", a.link)
	}
	if a.hostAddr.Masked() != a.nodeAddr.Masked() || a.hostAddr.Bits() != 30 || a.hostAddr.Addr() == a.nodeAddr.Addr() ||
		!netip.MustParsePrefix("10.250.0.0/16").Contains(a.hostAddr.Addr()) {
		t.Errorf("host %s and node %s are not two addresses of one /30 in 10.250.0.0/16", a.hostAddr, a.nodeAddr)
	}
	taken := a.hostAddr.Masked()
	c, _ := newNodeLayout("/tmp/a", func(p netip.Prefix) bool { return p != taken })
	if c.hostAddr.Masked() == taken {
		t.Errorf("the /30 %s in use was taken again", taken)
	}
	if _, err := newNodeLayout("/tmp/a", func(netip.Prefix) bool { return false }); err == nil {
		t.Error("no free /30, no error")
	}
}

// TestNodeConfigs checks the settings of containerd and kubelet that the
// node cannot do without on a host like this project's CI.
func TestNodeConfigs(t *testing.T) {
	l, err := newNodeLayout("/tmp/state", func(netip.Prefix) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	ctrd := l.containerdConfig("/usr/sbin/runc", "/usr/lib/cni")
	for _, want := range []string{
		`sandbox_image = "reroll.local/pause:1"`, `restrict_oom_score_adj = true`, `SystemdCgroup = false`,
		`root = "/tmp/state/node/containerd"`, `path = "/tmp/state/node/opt"`, `bin_dir = "/usr/lib/cni"`,
	} {
		if !strings.Contains(ctrd, want) {
			t.Errorf("containerd config lacks %s:\n%s", want, ctrd)
		}
	}
	for _, taint := range []bool{false, true} {
		data, err := l.kubeletConfig("/tmp/ca.crt", taint)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]any{
			"failCgroupV1": false, "cgroupDriver": "cgroupfs", "makeIPTablesUtilChains": false,
			"cgroupRoot": "/" + l.cgroup, "address": l.nodeAddr.Addr().String(),
			"volumePluginDir": "/tmp/state/node/volume-plugins", "podLogsDir": "/tmp/state/node/pod-logs",
		} {
			if cfg[key] != want {
				t.Errorf("kubelet %s = %v, want %v", key, cfg[key], want)
			}
		}
		if _, tainted := cfg["registerWithTaints"]; tainted != taint {
			t.Errorf("registerWithTaints present %v, want %v", tainted, taint)
		}
	}
	cni, err := l.cniConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cni), `"subnet": "`+podCIDR+`"`) || !strings.Contains(string(cni), `"ipMasq": false`) {
		t.Errorf("CNI config:\n%s", cni)
	}
}

// TestOneLine checks that a reason is folded onto one short line.
func TestOneLine(t *testing.T) {
	if got := oneLine("a\n  b\tc\n"); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine(strings.Repeat("x", 400)); len(got) != 300 || !strings.HasSuffix(got, "...") {
		t.Errorf("oneLine of 400 bytes = %d bytes", len(got))
	}
}
