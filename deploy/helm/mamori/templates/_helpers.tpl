{{/* Chart name. */}}
{{- define "mamori.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart, or the release name when it contains the chart's. */}}
{{- define "mamori.fullname" -}}
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

{{/* Labels of every object; call with (dict "root" $ "component" "server"). */}}
{{- define "mamori.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "mamori.selectorLabels" . }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "server"). */}}
{{- define "mamori.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mamori.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mamori.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end -}}

{{/* The server's in-cluster URL. */}}
{{- define "mamori.serverURL" -}}
{{ printf "https://%s-server.%s.svc:%v" (include "mamori.fullname" .) .Release.Namespace .Values.server.port }}
{{- end -}}

{{/* The server's in-cluster DNS names (for its certificate). */}}
{{- define "mamori.serverNames" -}}
{{- $svc := printf "%s-server" (include "mamori.fullname" .) -}}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- with .Values.ingress.host }}{{ $names = append $names . }}{{ end -}}
{{- with .Values.openshift.route.host }}{{ $names = append $names . }}{{ end -}}
{{- toJson $names -}}
{{- end -}}

{{/* Whether OpenShift's service CA signs the server certificate (reencrypt Route). */}}
{{- define "mamori.serviceCA" -}}
{{- if and .Values.openshift.enabled .Values.openshift.route.enabled (eq .Values.openshift.route.termination "reencrypt") (not .Values.server.tls.secretName) -}}true{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the server's TLS certificate. */}}
{{- define "mamori.serverTLSSecret" -}}
{{- if .Values.server.tls.secretName -}}
{{ .Values.server.tls.secretName }}
{{- else if include "mamori.serviceCA" . -}}
{{ include "mamori.fullname" . }}-server-service-ca-tls
{{- else -}}
{{ include "mamori.fullname" . }}-server-tls
{{- end -}}
{{- end -}}

{{/* Volume with the CA that signed the server's certificate, mounted at /etc/mamori/server-ca/ca.crt. */}}
{{- define "mamori.serverCAVolume" -}}
- name: server-ca
{{- if include "mamori.serviceCA" . }}
  configMap:
    name: {{ include "mamori.fullname" . }}-service-ca
    items:
      - {key: service-ca.crt, path: ca.crt}
{{- else }}
  secret:
    secretName: {{ include "mamori.serverTLSSecret" . }}
    items:
      - {key: ca.crt, path: ca.crt}
{{- end }}
{{- end -}}

{{/* Pod security context of the non-root components. On OpenShift the SCC
assigns the user and group ids. */}}
{{- define "mamori.podSecurityContext" -}}
runAsNonRoot: true
{{- if not .Values.openshift.enabled }}
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context of the non-root components. */}}
{{- define "mamori.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Fails the render with a clear message when a required Secret name is missing. */}}
{{- define "mamori.requireSecret" -}}
{{- if not .secret.name -}}
{{- fail (printf "%s.enabled is true but %s.name is empty: create a Secret with the token issued in the console and name it there (see docs/install-kubernetes.md)" .component .field) -}}
{{- end -}}
{{- end -}}
