{{/*
Checks that span several values (values.schema.json checks each value on its own). Each failure
names the value to change and why, because this is what an operator reads at `helm install`.
*/}}
{{- define "pht.validate" -}}
{{- $errors := list -}}
{{- range $name, $image := dict "operator.image" .Values.operator.image "stationApi.image" .Values.stationApi.image -}}
{{- if and (eq $image.tag "latest") (not $image.digest) -}}
{{- $errors = append $errors (printf "%s.tag: 'latest' is not reproducible; set an exact version tag or %s.digest" $name $name) -}}
{{- end -}}
{{- end -}}
{{- if has .Values.runNamespace.name .Values.station.namespaces -}}
{{- $errors = append $errors (printf "runNamespace.name: %q is also a station namespace; runs need a station-owned namespace researchers cannot read" .Values.runNamespace.name) -}}
{{- end -}}
{{- if eq .Release.Namespace .Values.runNamespace.name -}}
{{- $errors = append $errors (printf "runNamespace.name: %q is the release namespace; install the station into its own namespace (runs are default-deny there)" .Values.runNamespace.name) -}}
{{- end -}}
{{- if has .Release.Namespace .Values.station.namespaces -}}
{{- $errors = append $errors (printf "station.namespaces: contains the release namespace %q; researchers must not share a namespace with the station's credentials" .Release.Namespace) -}}
{{- end -}}
{{- if eq (int .Values.stationApi.ports.internal) (int .Values.stationApi.ports.external) -}}
{{- $errors = append $errors "stationApi.ports: internal and external must differ; the internal listener must never be reachable through the external Service" -}}
{{- end -}}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) -}}
{{- $errors = append $errors "ingress.tls.secretName: required when ingress.tls.enabled is true" -}}
{{- end -}}
{{- if .Values.console.enabled -}}
{{- range $name := list "issuer" "clientId" -}}
{{- if not (get $.Values.console.oidc $name) -}}
{{- $errors = append $errors (printf "console.oidc.%s: required when console.enabled is true (stewards sign in with the hospital's OpenID provider)" $name) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.console.oidc.clientSecret.existingSecret -}}
{{- $errors = append $errors "console.oidc.clientSecret.existingSecret: required when console.enabled is true (a Secret holding the console's client secret)" -}}
{{- end -}}
{{- if not (hasPrefix "https://" (include "pht.console.redirectUrl" .)) -}}
{{- $errors = append $errors (printf "console.oidc.redirectUrl: the console's callback %q must be https; set it, or station.publicBaseUrl to the station's https address" (include "pht.console.redirectUrl" .)) -}}
{{- end -}}
{{- end -}}
{{- range .Values.stationApi.extraEnv -}}
{{- if hasPrefix "PHT_API_CONSOLE_" (upper (toString .name)) -}}
{{- $errors = append $errors (printf "stationApi.extraEnv: %s is set through console.* (the chart signs stewards in with OpenID Connect only; the local login exists for the station in a box only)" .name) -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nInvalid values for the PHT station chart:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
