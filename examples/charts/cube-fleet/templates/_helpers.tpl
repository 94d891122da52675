{{/* The labels every object of the release carries; `-l app.kubernetes.io/instance=<release>` selects the fleet. */}}
{{- define "cube-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cube-fleet.labels" -}}
{{ include "cube-fleet.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the ProviderConfig the Cubes use. */}}
{{- define "cube-fleet.providerConfigName" -}}
{{- .Values.providerConfig.name | default .Values.providerConfig.provider -}}
{{- end }}

{{/*
The metadata block of one object. Args: dict with
  root: the chart context, kind, name, cube (the Cube's name, for attachments; "" for the ProviderConfig),
  labels / annotations: the object's own (win over defaults and common ones),
  defaultLabels / defaultAnnotations: from `defaults`, wave: the Argo CD sync wave, keep: bool.
*/}}
{{- define "cube-fleet.metadata" -}}
{{- $root := .root -}}
{{- $labels := merge (fromYaml (include "cube-fleet.labels" $root)) (.labels | default dict) (.defaultLabels | default dict) ($root.Values.commonLabels | default dict) -}}
{{- if .cube }}
{{- $_ := set $labels "cube-fleet.cube-operator.io/cube" .cube }}
{{- end }}
{{- $annotations := merge (dict "argocd.argoproj.io/sync-wave" (toString .wave)) (.annotations | default dict) (.defaultAnnotations | default dict) ($root.Values.commonAnnotations | default dict) -}}
{{- if .keep }}
{{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
{{- end -}}
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  annotations:
    {{- toYaml $annotations | nindent 4 }}
{{- end }}

{{/*
Checks across the values that the schema cannot express; fails the render otherwise.
*/}}
{{- define "cube-fleet.validate" -}}
{{- $seen := dict -}}
{{- range $cube := .Values.cubes -}}
{{- if hasKey $seen (printf "Cube/%s" $cube.name) -}}
{{- fail (printf "cubes: the name %q appears twice" $cube.name) -}}
{{- end -}}
{{- $_ := set $seen (printf "Cube/%s" $cube.name) true -}}
{{- $userData := $cube.userData | default $.Values.defaults.userData | default dict -}}
{{- if and $userData.template (not (hasKey ($.Values.cloudInitTemplates | default dict) $userData.template)) -}}
{{- fail (printf "cubes[%s].userData.template: %q is not a key of cloudInitTemplates" $cube.name $userData.template) -}}
{{- end -}}
{{- range $kind, $items := dict "TcpMapping" ($cube.tcpMappings | default list) "Domain" ($cube.domains | default list) "Snapshot" ($cube.snapshots | default list) -}}
{{- range $item := $items -}}
{{- $name := include "cube-fleet.attachmentName" (dict "kind" $kind "cube" $cube.name "item" $item) -}}
{{- if hasKey $seen (printf "%s/%s" $kind $name) -}}
{{- fail (printf "cubes[%s]: two %ss are named %q; give them distinct names" $cube.name $kind $name) -}}
{{- end -}}
{{- $_ := set $seen (printf "%s/%s" $kind $name) true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Object name of a TcpMapping, Domain or Snapshot: <cube>-<name>, the name defaulting per kind. */}}
{{- define "cube-fleet.attachmentName" -}}
{{- $item := .item -}}
{{- $suffix := $item.name -}}
{{- if not $suffix -}}
{{- if eq .kind "TcpMapping" -}}
{{- $suffix = printf "tcp-%d" (int $item.cubePort) -}}
{{- else if eq .kind "Domain" -}}
{{- $suffix = $item.domain | replace "." "-" -}}
{{- end -}}
{{- end -}}
{{- printf "%s-%s" .cube $suffix | trunc 253 | trimSuffix "-" -}}
{{- end }}

{{/* "true" when a Cube (the values entry in .cube) has keep, its own or the default. */}}
{{- define "cube-fleet.keep" -}}
{{- if hasKey .cube "keep" }}{{ .cube.keep }}{{ else }}{{ .root.Values.defaults.keep }}{{ end -}}
{{- end }}
