{{/*
Cross-field checks that a JSON schema cannot express well. Each failure says how to
fix the values. Included once, from inferenceservice.yaml.
*/}}
{{- define "sklearn-predictor.validate" -}}
{{- $v := .Values -}}
{{- $mode := $v.deploymentMode -}}
{{- $as := $v.autoscaling -}}
{{- if not $v.model.storageUri -}}
{{- fail "model.storageUri is required: set it to where the model lives, e.g. --set model.storageUri=gs://bucket/models/iris (pvc://claim/path for a PersistentVolumeClaim)" -}}
{{- end -}}
{{- if and (eq $as.mode "kpa") (ne $mode "Knative") -}}
{{- fail "autoscaling.mode=kpa needs deploymentMode=Knative (the Knative Pod Autoscaler); in Standard mode use autoscaling.mode=hpa or keda" -}}
{{- end -}}
{{- if and (has $as.mode (list "hpa" "keda")) (ne $mode "Standard") -}}
{{- fail (printf "autoscaling.mode=%s needs deploymentMode=Standard; in Knative mode use autoscaling.mode=kpa" $as.mode) -}}
{{- end -}}
{{- if and (lt (int $as.minReplicas) 1) (ne $as.mode "kpa") -}}
{{- fail "autoscaling.minReplicas=0 (scale to zero) needs deploymentMode=Knative with autoscaling.mode=kpa; otherwise set minReplicas >= 1" -}}
{{- end -}}
{{- if and (ne $as.mode "none") (gt (int $as.minReplicas) (int $as.maxReplicas)) -}}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d): raise maxReplicas or lower minReplicas" (int $as.minReplicas) (int $as.maxReplicas)) -}}
{{- end -}}
{{- if and (eq $as.mode "keda") (not $as.keda.serverAddress) -}}
{{- fail "autoscaling.mode=keda needs autoscaling.keda.serverAddress (the Prometheus URL KEDA queries)" -}}
{{- end -}}
{{- if $v.canary.enabled -}}
{{- if not $v.canary.storageUri -}}
{{- fail "canary.enabled=true needs canary.storageUri: the new model version the canary serves" -}}
{{- end -}}
{{- if eq $mode "Standard" -}}
{{- if not $v.model.predictorName -}}
{{- fail "a Standard-mode canary needs a named stable predictor: set model.predictorName (e.g. v1) and canary.name (e.g. v2)" -}}
{{- end -}}
{{- if eq $v.model.predictorName $v.canary.name -}}
{{- fail (printf "canary.name (%s) must differ from model.predictorName: promotion retargets the stable name to the canary's" $v.canary.name) -}}
{{- end -}}
{{- if ne $v.model.mode "custom" -}}
{{- fail "Standard-mode canaries are rendered for model.mode=custom only; set model.mode=custom" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $mode "Knative") (not $v.knativePodSecurityContext) -}}
{{- $extra := omit $v.podSecurityContext "runAsNonRoot" "seccompProfile" -}}
{{- if $extra -}}
{{- fail (printf "Knative rejects podSecurityContext.%s unless the cluster enables kubernetes.podspec-securitycontext: move it to securityContext (container level), or set knativePodSecurityContext=true if the feature is on" (keys $extra | sortAlpha | join ", podSecurityContext.")) -}}
{{- end -}}
{{- end -}}
{{- if and $v.logger.enabled (not $v.logger.url) -}}
{{- fail "logger.enabled=true needs logger.url (where KServe sends the payload CloudEvents)" -}}
{{- end -}}
{{- if and $v.storage.secretName (not $v.serviceAccount.create) -}}
{{- fail "storage.secretName is attached to the chart's ServiceAccount, so it needs serviceAccount.create=true; with your own ServiceAccount, list the secret in its `secrets:` instead and leave storage.secretName empty" -}}
{{- end -}}
{{- if and (eq $v.model.mode "runtime") (eq $v.exposeProtocol "grpc") -}}
{{- fail "exposeProtocol=grpc is rendered for model.mode=custom (the runtime's container decides its ports); use model.mode=custom" -}}
{{- end -}}
{{- if and $v.servingRuntime.create (not $v.servingRuntime.autoSelect) (ne (int $v.servingRuntime.priority) 1) -}}
{{- fail "servingRuntime.priority only applies with servingRuntime.autoSelect=true" -}}
{{- end -}}
{{- end -}}
