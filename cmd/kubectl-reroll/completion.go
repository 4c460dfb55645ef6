package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Shell completion, as kubectl asks its plugins for it: kubectl runs
// kubectl_complete-reroll (which runs "kubectl-reroll __complete") with
// the words typed so far, the last one being the word to complete, and
// reads one candidate a line, then ":4" (no file completion), the protocol
// of kubectl's own completion.

// noFileCompletion is the directive that ends every answer.
const noFileCompletion = ":4"

// completionKinds are the kinds a KIND/NAME argument takes, by command.
func completionKinds(command string) []string {
	switch command {
	case "impact", "release":
		return []string{"configmap", "secret"}
	case "pause", "resume":
		return []string{"deployment", "statefulset", "daemonset", "cronjob", "configmap", "secret", "namespace"}
	case "status", "explain":
		return []string{"deployment", "statefulset", "daemonset", "cronjob"}
	}
	return nil
}

// runComplete answers a completion request for args (the words after
// "kubectl reroll", the last one being completed) on out.
func runComplete(ctx context.Context, args []string, out io.Writer, connect connector) int {
	candidates := completeWords(ctx, args, connect)
	for _, c := range candidates {
		fmt.Fprintln(out, c)
	}
	fmt.Fprintln(out, noFileCompletion)
	return 0
}

// completeWords returns the candidates for the last of args: a command,
// a kind, or the names of a kind's objects in the namespace (-n, or the
// context's). Flags are left to the shell.
func completeWords(ctx context.Context, args []string, connect connector) []string {
	if len(args) == 0 {
		args = []string{""}
	}
	word := args[len(args)-1]
	if len(args) == 1 {
		names := append([]string{"version"}, commandNames()...)
		return withPrefix(names, word)
	}
	if strings.HasPrefix(word, "-") {
		return nil
	}
	kinds := completionKinds(args[0])
	kind, prefix, hasSlash := strings.Cut(word, "/")
	if !hasSlash {
		var out []string
		for _, k := range withPrefix(kinds, word) {
			out = append(out, k+"/")
		}
		return out
	}
	if !slices.Contains(kinds, kind) {
		return nil
	}
	o := &options{connector: connect}
	for i, a := range args[:len(args)-1] {
		if (a == "-n" || a == "--namespace") && i+1 < len(args)-1 {
			o.namespace = args[i+1]
		}
	}
	_, client, namespace, err := connect(o)
	if err != nil {
		return nil
	}
	names, err := objectNames(ctx, client, kind, namespace)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range withPrefix(names, prefix) {
		out = append(out, kind+"/"+n)
	}
	return out
}

// commandNames returns the commands, sorted.
func commandNames() []string {
	var names []string
	for n := range commands() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// withPrefix returns the items that start with prefix.
func withPrefix(items []string, prefix string) []string {
	var out []string
	for _, i := range items {
		if strings.HasPrefix(i, prefix) {
			out = append(out, i)
		}
	}
	return out
}

// objectNames lists the names of the objects of kind in namespace.
func objectNames(ctx context.Context, c kubernetes.Interface, kind, namespace string) ([]string, error) {
	opts := metav1.ListOptions{}
	lists := map[string]func() (runtime.Object, error){
		"deployment":  func() (runtime.Object, error) { return c.AppsV1().Deployments(namespace).List(ctx, opts) },
		"statefulset": func() (runtime.Object, error) { return c.AppsV1().StatefulSets(namespace).List(ctx, opts) },
		"daemonset":   func() (runtime.Object, error) { return c.AppsV1().DaemonSets(namespace).List(ctx, opts) },
		"cronjob":     func() (runtime.Object, error) { return c.BatchV1().CronJobs(namespace).List(ctx, opts) },
		"configmap":   func() (runtime.Object, error) { return c.CoreV1().ConfigMaps(namespace).List(ctx, opts) },
		"secret":      func() (runtime.Object, error) { return c.CoreV1().Secrets(namespace).List(ctx, opts) },
		"namespace":   func() (runtime.Object, error) { return c.CoreV1().Namespaces().List(ctx, opts) },
	}
	list, err := lists[kind]()
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, item := range items {
		if m, err := meta.Accessor(item); err == nil {
			names = append(names, m.GetName())
		}
	}
	sort.Strings(names)
	return names, nil
}
