{{/* The release's full name: the release name if it contains the chart name, else release-chart. */}}
{{- define "ivschat-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ivschat-operator.serviceAccountName" -}}
{{- default (include "ivschat-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "ivschat-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ivschat-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: ivschat-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's rules on its kinds, events and exported ConfigMaps, as a ClusterRole or as a Role in the watched namespace. */}}
{{- define "ivschat-operator.rules" -}}
- apiGroups: ["ivschat.dev"]
  resources: ["chatrooms", "chatloggingconfigurations"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["ivschat.dev"]
  resources: ["chatrooms/status", "chatloggingconfigurations/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end -}}

{{- /* ChatAccounts (cluster-scoped) and the Namespaces' labels: cluster-wide even for a single-namespace
install, which reads only its own namespace (by name). */ -}}
{{- define "ivschat-operator.accountRules" -}}
- apiGroups: ["ivschat.dev"]
  resources: ["chataccounts"]
  verbs: ["list", "watch"]
- apiGroups: ["ivschat.dev"]
  resources: ["chataccounts/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["namespaces"]
  {{- if .Values.watchNamespace }}
  resourceNames: [{{ .Values.watchNamespace | quote }}]
  {{- end }}
  verbs: ["list", "watch"]
{{- end -}}
