{{/* The name of the chart's objects. */}}
{{- define "serin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "serin.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "serin.labels" -}}
{{ include "serin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "serin.serviceAccountName" -}}
{{- default (include "serin.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The namespace a namespaced install serves. */}}
{{- define "serin.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace -}}
{{- end -}}

{{/*
The namespaces whose MetricTemplates and AlertProviders Canaries may
reference besides their own, comma-separated: sharedNamespaces, or the
controller's own namespace (the default of --shared-namespaces).
*/}}
{{- define "serin.sharedNamespaces" -}}
{{- if .Values.sharedNamespaces -}}
{{- join "," .Values.sharedNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
The routers whose RBAC is granted, as a comma-separated list:
rbac.routers "all", or only the router of .Values.provider (none for the
kubernetes provider, which only uses Services).
*/}}
{{- define "serin.routers" -}}
{{- if eq .Values.rbac.routers "all" -}}
istio,contour,nginx,gatewayapi
{{- else if hasPrefix "gatewayapi" .Values.provider -}}
gatewayapi
{{- else if ne .Values.provider "kubernetes" -}}
{{- .Values.provider -}}
{{- end -}}
{{- end -}}

{{/* The rules of each router: they read around the cache, apply, and delete on revertOnDeletion. */}}
{{- define "serin.routerRules" -}}
{{- $groups := dict "istio" "networking.istio.io" "contour" "projectcontour.io" "nginx" "networking.k8s.io" "gatewayapi" "gateway.networking.k8s.io" -}}
{{- $resources := dict "istio" (list "virtualservices" "destinationrules") "contour" (list "httpproxies") "nginx" (list "ingresses") "gatewayapi" (list "httproutes") -}}
- apiGroups: [{{ get $groups .router | quote }}]
  resources: {{ get $resources .router | toJson }}
  verbs: ["get", "create", "patch", "delete"]
{{- end -}}
