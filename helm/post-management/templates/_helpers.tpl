{{- define "post-management.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "post-management.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "post-management.selectorLabels" -}}
app.kubernetes.io/name: {{ include "post-management.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "post-management.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "post-management.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xmp
{{- end -}}

{{- define "post-management.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "post-management.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "post-management.secretName" -}}
{{- default (include "post-management.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "post-management.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Envoy configuration: files/envoy.yaml with the chart's ports. */}}
{{- define "post-management.envoyConfig" -}}
{{- tpl (.Files.Get "files/envoy.yaml") . -}}
{{- end -}}

{{/* Environment of the service and the migration Job. Secrets only by reference. */}}
{{- define "post-management.env" -}}
# The kubelet's gRPC probes and the Service reach the pod IP, not loopback.
- name: GRPC_HOST
  value: "0.0.0.0"
- name: GRPC_PORT
  value: {{ .Values.ports.grpc | quote }}
- name: HTTP_PORT
  value: {{ .Values.ports.http | quote }}
- name: METRICS_PORT
  value: {{ .Values.ports.metrics | quote }}
# Prometheus scrapes the pod IP, not loopback.
- name: METRICS_HOST
  value: "0.0.0.0"
- name: DATA_DIR
  value: /var/lib/post-management
- name: X_MODE
  value: {{ .Values.x.mode | quote }}
# The gRPC server's receive limit is Envoy's largest body (docs/security.md).
- name: MAX_REQUEST_BYTES
  value: {{ int64 .Values.limits.maxRequestBytes | quote }}
- name: MAX_UPLOAD_BYTES
  value: {{ int64 .Values.limits.maxUploadBytes | quote }}
- name: GRPC_MAX_CONCURRENT_RPCS
  value: {{ int64 .Values.limits.maxConcurrentRpcs | quote }}
{{- range $name, $value := .Values.app.env }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- $secretName := include "post-management.secretName" . }}
{{- range $name, $ref := .Values.secrets.env }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ required (printf "secrets.env.%s.key is required" $name) $ref.key }}
      optional: {{ $ref.optional | default false }}
{{- end }}
{{- with .Values.app.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
One probe of the app container: (list $root $timing). Native gRPC probes by default;
`exec` runs `post-management health-probe` (grpc_health_probe's flags and exit codes)
for clusters without them, its connect and RPC timeouts each half of timeoutSeconds.
*/}}
{{- define "post-management.healthProbe" -}}
{{- $root := index . 0 -}}
{{- $timing := index . 1 -}}
{{- $probes := $root.Values.app.probes -}}
{{- if eq $probes.mode "grpc" }}
grpc:
  port: {{ $root.Values.ports.grpc }}
  service: {{ $probes.grpcService | quote }}
{{- else if eq $probes.mode "exec" }}
{{- $halfMs := mul $timing.timeoutSeconds 500 }}
exec:
  command:
    - post-management
    - health-probe
    - -addr=127.0.0.1:{{ $root.Values.ports.grpc }}
    - -service={{ $probes.grpcService }}
    - -connect-timeout={{ $halfMs }}ms
    - -rpc-timeout={{ $halfMs }}ms
{{- else }}
{{- fail (printf "app.probes.mode must be grpc or exec, not %q" $probes.mode) }}
{{- end }}
{{ toYaml $timing }}
{{- end -}}

{{/* A secret env var that must come from the Secret (present and not optional). */}}
{{- define "post-management.requireSecret" -}}
{{- $ref := index .root.Values.secrets.env .name -}}
{{- if or (not $ref) (not $ref.key) ($ref.optional) -}}
{{- fail (printf "secrets.env.%s must name a key of the Secret with optional: false (%s)" .name .why) -}}
{{- end -}}
{{- end -}}

{{/* What an operator must set: the chart refuses to render without it
     (docs/security.md, "What production needs"). */}}
{{- define "post-management.validate" -}}
{{- $mode := .Values.x.mode | default "" -}}
{{- if not (has $mode (list "x" "emulator")) -}}
{{- fail "x.mode is required: x (the real X; the Secret holds the three TWITTER_* keys) or emulator (nothing is really published)" -}}
{{- end -}}
{{- include "post-management.requireSecret" (dict "root" . "name" "JWT_SECRET" "why" "tokens are signed with it") -}}
{{- include "post-management.requireSecret" (dict "root" . "name" "ENCRYPTION_KEYS" "why" "X credentials are encrypted with it") -}}
{{- include "post-management.requireSecret" (dict "root" . "name" "HMAC_SECRET" "why" "page tokens and erased users' pseudonyms are keyed with it, the same in every replica") -}}
{{- if eq $mode "x" -}}
{{- range $name := list "TWITTER_CONSUMER_KEY" "TWITTER_CONSUMER_SECRET" "TWITTER_BEARER_TOKEN" -}}
{{- include "post-management.requireSecret" (dict "root" $ "name" $name "why" "x.mode is x") -}}
{{- end -}}
{{- end -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}
{{- include "post-management.requireSecret" (dict "root" . "name" "DATABASE_URL" "why" "with several replicas each pod would have its own embedded database") -}}
{{- end -}}
{{- if lt (int64 .Values.limits.maxUploadBytes) (int64 .Values.limits.maxRequestBytes) -}}
{{- fail "limits.maxUploadBytes must be at least limits.maxRequestBytes" -}}
{{- end -}}
{{- end -}}
