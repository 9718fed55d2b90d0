{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "sklearn-predictor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: the InferenceService name. KServe derives longer names from
it ("<name>-predictor-..."), so it is kept to 45 characters.
*/}}
{{- define "sklearn-predictor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sklearn-predictor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "sklearn-predictor.labels" -}}
helm.sh/chart: {{ include "sklearn-predictor.chart" . }}
{{ include "sklearn-predictor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sklearn-predictor
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "sklearn-predictor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sklearn-predictor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "sklearn-predictor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sklearn-predictor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest, or repository:tag (tag defaults to appVersion).
Argument: dict with "root" and optional "tag".
*/}}
{{- define "sklearn-predictor.image" -}}
{{- $img := .root.Values.image }}
{{- if and $img.digest (not .tag) }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (.tag | default $img.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Base URL of the predictor inside the cluster (KServe names the predictor Service
"<isvc>-predictor" in both deployment modes).
*/}}
{{- define "sklearn-predictor.internalURL" -}}
{{- if .Values.tests.url }}
{{- .Values.tests.url }}
{{- else }}
{{- printf "http://%s-predictor.%s.svc.cluster.local" (include "sklearn-predictor.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
host:port of the predictor's gRPC endpoint for the test pods (exposeProtocol=grpc).
*/}}
{{- define "sklearn-predictor.grpcTarget" -}}
{{- if .Values.tests.grpcTarget }}
{{- .Values.tests.grpcTarget }}
{{- else }}
{{- printf "%s-predictor.%s.svc.cluster.local:80" (include "sklearn-predictor.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
PREDICTOR_* environment of the predictor container.
*/}}
{{- define "sklearn-predictor.env" -}}
- name: PREDICTOR_MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: PREDICTOR_MODEL_DIR
  value: /mnt/models
- name: PREDICTOR_WORKERS
  value: {{ .Values.predictor.workers | quote }}
- name: PREDICTOR_ENGINE
  value: {{ .Values.predictor.engine | quote }}
- name: PREDICTOR_LOG_LEVEL
  value: {{ .Values.predictor.logLevel | quote }}
- name: PREDICTOR_BATCHING
  value: {{ .Values.predictor.batching.enabled | quote }}
- name: PREDICTOR_MAX_BATCH_SIZE
  value: {{ .Values.predictor.batching.maxBatchSize | quote }}
- name: PREDICTOR_MAX_LATENCY_US
  value: {{ .Values.predictor.batching.maxLatencyUs | quote }}
- name: PREDICTOR_IDLE_WAIT_US
  value: {{ .Values.predictor.batching.idleWaitUs | quote }}
- name: PREDICTOR_INLINE_MAX_US
  value: {{ .Values.predictor.batching.inlineMaxUs | quote }}
{{- with .Values.model.sha256 }}
- name: PREDICTOR_MODEL_SHA256
  value: {{ . | quote }}
{{- end }}
{{- with .Values.model.trustedTypes }}
- name: PREDICTOR_TRUSTED_TYPES
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Container port + probes for the exposed protocol.
*/}}
{{- define "sklearn-predictor.portsAndProbes" -}}
{{- if eq .Values.exposeProtocol "grpc" -}}
ports:
  - name: h2c
    containerPort: 8081
    protocol: TCP
readinessProbe:
  exec:
    command: ["/opt/venv/bin/python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/v2/health/ready', timeout=2)"]
  initialDelaySeconds: 2
  periodSeconds: 5
  timeoutSeconds: 3
livenessProbe:
  exec:
    command: ["/opt/venv/bin/python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/v2/health/live', timeout=2)"]
  initialDelaySeconds: 10
  periodSeconds: 15
  timeoutSeconds: 3
{{- else -}}
ports:
  - name: http1
    containerPort: 8080
    protocol: TCP
readinessProbe:
  httpGet:
    path: /v2/health/ready
    port: 8080
  initialDelaySeconds: 2
  periodSeconds: 5
  timeoutSeconds: 2
livenessProbe:
  httpGet:
    path: /v2/health/live
    port: 8080
  initialDelaySeconds: 10
  periodSeconds: 15
  timeoutSeconds: 3
{{- end }}
{{- end }}

{{/*
The kserve-container (custom mode). Argument: dict root, storageUri, tag.
*/}}
{{- define "sklearn-predictor.container" -}}
{{- $v := .root.Values -}}
- name: kserve-container
  image: {{ include "sklearn-predictor.image" (dict "root" .root "tag" .tag) }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - --model_name={{ $v.model.name }}
    - --model_dir=/mnt/models
    - --http_port=8080
    - --grpc_port=8081
  env:
    - name: STORAGE_URI
      value: {{ .storageUri | quote }}
    {{- include "sklearn-predictor.env" .root | nindent 4 }}
  {{- include "sklearn-predictor.portsAndProbes" .root | nindent 2 }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}
