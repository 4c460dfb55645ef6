package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/reroll/reroll/pkg/controller"
)

// defineImpactFlags defines impact's -f.
func defineImpactFlags(fs *flag.FlagSet, o *options) {
	for _, name := range []string{"filename", "f"} {
		fs.StringVar(&o.file, name, "", "The new version of the object, as YAML or JSON; - reads standard input.")
	}
}

// runImpact prints what replacing a ConfigMap or Secret with the object of
// -f would roll, consumer by consumer; without -f, what each consumes.
func runImpact(ctx context.Context, o *options, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("takes one (configmap|secret)/NAME")
	}
	kind, name, err := parseConfigArg(args[0])
	if err != nil {
		return err
	}
	if o.allNamespaces {
		return errors.New("impact works in one namespace; drop -A")
	}
	cfg, client, ns, err := o.connect()
	if err != nil {
		return err
	}
	var next runtime.Object
	if o.file != "" {
		if next, err = o.readObject(kind, name, ns); err != nil {
			return err
		}
	}
	in, err := snapshot(ctx, o, cfg, client, ns)
	if err != nil {
		return err
	}
	if kind == "Secret" && next != nil {
		// The live Secret is compared key by key: read it by name, which
		// needs get on it, the normal rule (list may be forbidden).
		if err := addLiveSecret(ctx, client, in, ns, name); err != nil {
			return err
		}
	}
	rows, err := in.Impact(kind, ns, name, next)
	if err != nil {
		return err
	}
	if o.output != "table" {
		return printStructured(out, o.output, rows)
	}
	return printImpactTable(out, rows, next != nil)
}

// parseConfigArg parses "configmap/NAME" or "secret/NAME" (kubectl's
// forms: cm, configmaps, secrets).
func parseConfigArg(arg string) (kind, name string, err error) {
	k, name, ok := strings.Cut(arg, "/")
	switch normalizeKind(k) {
	case "configmap":
		kind = "ConfigMap"
	case "secret":
		kind = "Secret"
	}
	if !ok || name == "" || kind == "" {
		return "", "", fmt.Errorf("%q is not configmap/NAME or secret/NAME", arg)
	}
	return kind, name, nil
}

// readObject reads -f (or standard input for "-") as a ConfigMap or
// Secret that must be of kind and, if it says, named name in namespace ns.
func (o *options) readObject(kind, name, ns string) (runtime.Object, error) {
	r := o.stdin
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var meta struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096).Decode(&meta); err != nil {
		return nil, fmt.Errorf("%s: %w", o.file, err)
	}
	if meta.Kind != kind {
		return nil, fmt.Errorf("%s holds a %q, not a %s", o.file, meta.Kind, kind)
	}
	if meta.Metadata.Name != "" && meta.Metadata.Name != name {
		return nil, fmt.Errorf("%s is %s/%s, not %s", o.file, kind, meta.Metadata.Name, name)
	}
	if meta.Metadata.Namespace != "" && meta.Metadata.Namespace != ns {
		return nil, fmt.Errorf("%s is in namespace %s, not %s", o.file, meta.Metadata.Namespace, ns)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
	if kind == "ConfigMap" {
		cm := &corev1.ConfigMap{}
		err := dec.Decode(cm)
		cm.Name, cm.Namespace = name, ns
		return cm, err
	}
	s := &corev1.Secret{}
	if err := dec.Decode(s); err != nil {
		return nil, err
	}
	// stringData is written into data, as the API server does.
	for k, v := range s.StringData {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	s.StringData, s.Name, s.Namespace = nil, name, ns
	return s, nil
}

// addLiveSecret reads the live Secret by name into the snapshot.
func addLiveSecret(ctx context.Context, client kubernetes.Interface, in *controller.Inspector, ns, name string) error {
	s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return in.Add(s)
	case isNotFound(err):
		return nil // a new Secret: every consumed key changes
	}
	return asForbidden(err, "get", "secrets", ns, name)
}

// printImpactTable prints impact rows; changed says whether a new version
// was given (else the rows list what each consumer consumes).
func printImpactTable(out io.Writer, rows []controller.ImpactRow, changed bool) error {
	tw := newTable(out)
	if !changed {
		fmt.Fprintln(tw, "NAME\tCONSUMES\tNOTE")
		for _, r := range rows {
			keys := keysText(r.Keys)
			if r.Reason != "" {
				keys = "-"
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\n", strings.ToLower(r.Kind), r.Name, keys, orDash(r.Reason))
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "NAME\tVERDICT\tCHANGED KEYS\tWAVE\tREASON")
	for _, r := range rows {
		keys, wave := "-", "-"
		if r.Verdict == "WOULD ROLL" {
			keys = keysText(r.Keys)
		}
		if r.Wave > 0 {
			wave = fmt.Sprint(r.Wave)
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\n", strings.ToLower(r.Kind), r.Name, r.Verdict, keys, wave, orDash(r.Reason))
	}
	return tw.Flush()
}
