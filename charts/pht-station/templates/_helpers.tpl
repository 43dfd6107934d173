{{/*
Names, labels and images shared by every template. Labels follow the app.kubernetes.io
conventions so kube-prometheus-stack, Grafana and kubectl selectors find the station's objects.
*/}}

{{- define "pht.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pht.fullname" -}}
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

{{- define "pht.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object; pass (dict "ctx" $ "component" "operator"). */}}
{{- define "pht.labels" -}}
helm.sh/chart: {{ include "pht.chart" .ctx }}
{{ include "pht.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: pht-station
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pht.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pht.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "pht.operator.fullname" -}}
{{- printf "%s-operator" (include "pht.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pht.api.fullname" -}}
{{- printf "%s-api" (include "pht.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pht.api.internalService" -}}
{{- printf "%s-api-internal" (include "pht.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pht.api.externalService" -}}
{{- printf "%s-api" (include "pht.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pht.operatorCredential.secretName" -}}
{{- default (printf "%s-operator-credential" (include "pht.fullname" .)) .Values.operatorCredential.existingSecret -}}
{{- end -}}

{{/*
An image reference from registry/repository/tag/digest; global.imageRegistry (a mirror) wins over
the image's own registry; a digest pins the image whatever the tag says.
Pass (dict "image" .Values.operator.image "ctx" $).
*/}}
{{- define "pht.image" -}}
{{- $registry := default .image.registry .ctx.Values.global.imageRegistry -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- $ref := printf "%s:%s" .image.repository $tag -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" $registry $ref -}}
{{- end -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "pht.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Where the OpenID provider sends a steward back to the console after signing in. */}}
{{- define "pht.console.redirectUrl" -}}
{{- default (printf "%s/console/signin/callback" (trimSuffix "/" .Values.station.publicBaseUrl)) .Values.console.oidc.redirectUrl -}}
{{- end -}}

{{/* The URL runs use: the internal Service by its fixed ClusterIP (runs have no DNS). */}}
{{- define "pht.api.runUrl" -}}
{{- $ip := .Values.stationApi.service.internal.clusterIP -}}
{{- if contains ":" $ip -}}
{{- printf "http://[%s]:%d" $ip (int .Values.stationApi.service.internal.port) -}}
{{- else -}}
{{- printf "http://%s:%d" $ip (int .Values.stationApi.service.internal.port) -}}
{{- end -}}
{{- end -}}

{{/* The URL the operator uses: the internal Service by name. */}}
{{- define "pht.api.internalUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "pht.api.internalService" .) .Release.Namespace (int .Values.stationApi.service.internal.port) -}}
{{- end -}}

{{/* Pod Security Admission labels for the restricted profile. */}}
{{- define "pht.podSecurityLabels" -}}
pod-security.kubernetes.io/enforce: restricted
pod-security.kubernetes.io/enforce-version: latest
pod-security.kubernetes.io/audit: restricted
pod-security.kubernetes.io/warn: restricted
{{- end -}}
