{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "cube-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it contains it. */}}
{{- define "cube-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cube-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cube-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cube-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cube-operator.labels" -}}
helm.sh/chart: {{ include "cube-operator.chart" . }}
{{ include "cube-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cube-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cube-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cube-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cube-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Checks that the values make a working operator; fails the render otherwise. */}}
{{- define "cube-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.ha.enabled) }}
{{- fail "replicas > 1 needs ha.enabled=true: without kopf peering every replica would reconcile the same objects" }}
{{- end }}
{{- if and .Values.ha.enabled (not .Values.ha.peeringName) }}
{{- fail "ha.enabled=true needs ha.peeringName" }}
{{- end }}
{{- end }}

{{/* RBAC rules for the namespaced resources the operator reads and writes. */}}
{{- define "cube-operator.namespacedRules" -}}
# The operator's own kinds: watched by kopf, patched for finalizers and kopf's
# progress annotations, their status written through the status subresource.
- apiGroups: ["cube-operator.io"]
  resources: ["providerconfigs", "cubes", "snapshots", "restores", "tcpmappings", "domains", "webhooks"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["cube-operator.io"]
  resources: ["providerconfigs/status", "cubes/status", "snapshots/status", "restores/status", "tcpmappings/status", "domains/status", "webhooks/status"]
  verbs: ["patch"]
# Secrets: read provider credentials, SSH keys and user data by name; write the
# signing secret a provider returns once when a Webhook is created into
# Webhook.spec.secretRef (create, or patch when that Secret already exists).
# watch: a changed credentials Secret takes effect within a second. The operator opens
# each watch with fieldSelector metadata.name=<the Secret a ProviderConfig names>; it
# never lists Secrets (no list verb).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "watch", "create", "patch"]
# Events on the objects it reconciles (kopf posts core v1 Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* RBAC rules for the cluster-scoped reads kopf needs. */}}
{{- define "cube-operator.clusterRules" -}}
# kopf: namespace discovery and the CRD scan it does at startup.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{/* --webhook-public-url: explicit, or derived from the first ingress host. */}}
{{- define "cube-operator.webhookPublicURL" -}}
{{- $r := .Values.webhookReceiver }}
{{- if $r.publicURL }}
{{- $r.publicURL | trimSuffix "/" }}
{{- else if and $r.ingress.enabled $r.ingress.hosts }}
{{- printf "%s://%s" (ternary "https" "http" (not (empty $r.ingress.tls))) (first $r.ingress.hosts).host }}
{{- end }}
{{- end }}
