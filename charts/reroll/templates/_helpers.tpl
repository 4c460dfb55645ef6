{{/* Labels of every object. */}}
{{- define "reroll.labels" -}}
app.kubernetes.io/name: reroll
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select reroll's pods. */}}
{{- define "reroll.selectorLabels" -}}
app.kubernetes.io/name: reroll
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The rules reroll needs on what it watches: the same in a ClusterRole
and, namespace-scoped, in a Role. */}}
{{- define "reroll.watchRules" -}}
{{- $ignore := .Values.resourcesToIgnore | lower }}
{{- if .Values.ignoreSecrets }}{{ $ignore = "secrets" }}{{ end }}
{{- if .Values.ignoreConfigMaps }}{{ $ignore = "configmaps" }}{{ end }}
- apiGroups: [""]
  resources: [{{ without (list "configmaps" "secrets") $ignore | join ", " }}]
  verbs: [get, list, watch]
{{- $apps := list }}
{{- range (include "reroll.kinds" . | splitList ",") }}{{ if has . (list "deployments" "statefulsets" "daemonsets") }}{{ $apps = append $apps . }}{{ end }}{{ end }}
{{- if $apps }}
- apiGroups: [apps]
  resources: [{{ join ", " $apps }}]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if has "cronjobs" (include "reroll.kinds" . | splitList ",") }}
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if has "jobs" (include "reroll.kinds" . | splitList ",") }}
# Jobs roll by being re-created.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, patch, create, delete]
{{- end }}
{{- if .Values.secretsStoreCSI }}
# The Secrets Store CSI driver's per-pod status of mounted versions.
- apiGroups: [secrets-store.csi.x-k8s.io]
  resources: [secretproviderclasspodstatuses]
  verbs: [get, list, watch]
{{- end }}
{{- if has "rollouts" (include "reroll.kinds" . | splitList ",") }}
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [get, list, watch, patch]
{{- end }}
{{- range .Values.extraKinds }}
- apiGroups: [{{ .group | quote }}]
  resources: [{{ .resource }}]
  verbs: [get, list, watch, patch]
{{- end }}
{{- if not (has (toString .Values.policies.bakeTime) (list "0" "0s" "")) }}
# The pods of the workloads whose bake is not over (--bake-time), each
# workload's listed and watched by its selector while it bakes.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
{{- end }}
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* --extra-kinds as reroll takes it. */}}
{{- define "reroll.extraKinds" -}}
{{- $items := list }}
{{- range .Values.extraKinds }}
{{- $item := .resource }}
{{- if .version }}{{ $item = printf "%s.%s" $item .version }}{{ end }}
{{- $item = printf "%s.%s" $item .group }}
{{- if .templatePath }}{{ $item = printf "%s:%s" $item .templatePath }}{{ end }}
{{- $items = append $items $item }}
{{- end }}
{{- join "," $items }}
{{- end }}

{{/* The watched namespaces, comma-separated (empty: all): watchNamespace,
or watchNamespaces, or Reloader's namespaces (a list or a comma-separated
string); setting more than one fails, as does a namespace selection. */}}
{{- define "reroll.watchedNamespaces" -}}
{{- $watched := .Values.watchNamespaces }}
{{- $set := 0 }}
{{- if .Values.watchNamespaces }}{{ $set = add1 $set }}{{ end }}
{{- with .Values.namespaces }}
{{- $set = add1 $set }}
{{- $watched = kindIs "string" . | ternary (splitList "," (toString .)) . }}
{{- end }}
{{- with .Values.watchNamespace }}
{{- $set = add1 $set }}
{{- $watched = list . }}
{{- end }}
{{- if gt $set 1 }}
{{- fail "watchNamespace, watchNamespaces and namespaces all name the watched namespaces; set one" }}
{{- end }}
{{- if and $watched (or .Values.namespaceSelector .Values.ignoreNamespaces) }}
{{- fail "namespaceSelector and ignoreNamespaces choose among all namespaces; watchNamespace and watchNamespaces already name the watched ones" }}
{{- end }}
{{- range $watched }}{{ trim . }},{{ end }}
{{- end }}

{{/* The built-in kinds watched, comma-separated: kinds, without jobs or
cronjobs when Reloader's ignoreJobs or ignoreCronJobs is set, and with
rollouts when Reloader's isArgoRollouts is. */}}
{{- define "reroll.kinds" -}}
{{- $kinds := .Values.kinds }}
{{- if .Values.ignoreJobs }}{{ $kinds = without $kinds "jobs" }}{{ end }}
{{- if .Values.ignoreCronJobs }}{{ $kinds = without $kinds "cronjobs" }}{{ end }}
{{- if and .Values.isArgoRollouts (not (has "rollouts" $kinds)) }}{{ $kinds = append $kinds "rollouts" }}{{ end }}
{{- join "," $kinds }}
{{- end }}
